import { getEventListeners } from 'node:events';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMcpTx, type McpTx, mcpTxClientCapabilities, perRequestSignalFetch } from '../../src/index.js';
import { typeAhead } from '../support/e2eServer.js';
import { until } from '../support/fixture.js';
import { type HttpServer, startHttpServer } from '../support/httpServer.js';

let server: HttpServer | undefined;
let tx: McpTx | undefined;
afterEach(async () => {
  await tx?.close({ timeoutMs: 1_000 });
  await server?.close();
  tx = undefined;
  server = undefined;
});

async function connectHttp(stateless: boolean, config: Parameters<typeof createMcpTx>[1] = {}) {
  server = await startHttpServer({ stateless });
  const client = new Client(
    { name: 'http-test', version: '1.0.0' },
    { capabilities: mcpTxClientCapabilities() },
  );
  const transport = new StreamableHTTPClientTransport(server.url, { fetch: perRequestSignalFetch() });
  await client.connect(transport);
  tx = createMcpTx(client, { retry: { baseDelayMs: 5, maxDelayMs: 50, jitter: false }, ...config });
  // The transport shares one AbortSignal across its fetches: listeners left on it would be a leak.
  const sharedSignal = (transport as unknown as { _abortController?: AbortController })._abortController
    ?.signal;
  const signalListeners = () => (sharedSignal ? getEventListeners(sharedSignal, 'abort').length : 0);
  return { tx, state: server.state, cancellations: server.cancellations, signalListeners };
}

describe.each([
  ['stateful', false],
  ['stateless', true],
])('over Streamable HTTP on 127.0.0.1 (%s)', (_mode, stateless) => {
  it('runs the effect once when the response is lost to a client timeout and the call is retried', async () => {
    const { tx, state } = await connectHttp(stateless, { dedupe: false });
    const result = await tx.call(
      'charge',
      { id: 'lost', answerAfterMs: 300 },
      { idempotencyKey: 'lost', timeoutMs: 100, retry: { maxAttempts: 10 } },
    );
    expect(result.meta).toMatchObject({ duplicate: true, status: 'completed' });
    expect(state.effects.lost).toBe(1);
  });

  it('keeps 64 calls in flight without MaxListenersExceededWarning, and leaves no listener behind', async () => {
    const { tx, state, signalListeners } = await connectHttp(stateless);
    const listenersBefore = signalListeners();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => {
      if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const results = await lastValueFrom(
        from(Array.from({ length: 256 }, (_, index) => index)).pipe(
          mergeMap((index) => tx.call$('charge', { id: `p${index}` }, { idempotencyKey: `p${index}` }), 64),
          toArray(),
        ),
      );
      await new Promise((resolve) => setImmediate(resolve));
      expect(results).toHaveLength(256);
      expect(Object.keys(state.effects)).toHaveLength(256);
      expect(warnings).toEqual([]);
      expect(signalListeners()).toBe(listenersBefore);
    } finally {
      process.off('warning', onWarning);
    }
  });

  // Stateless, the cancellation reaches another server instance than the call: it is seen, but
  // nothing is left there to abort (the MCP spec's stateless mode has no request to cancel).
  it('cancels stale calls under switchMap: the server sees the cancellations (and, stateful, aborts the handlers)', async () => {
    const { tx, state, cancellations } = await connectHttp(stateless);
    expect(await typeAhead(tx)).toHaveLength(1);
    await until(() => cancellations() === 2, 5_000);
    if (!stateless) await until(() => state.aborted === 2, 5_000);
  });
});
