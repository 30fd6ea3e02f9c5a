import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionState, createMcpTx, type McpTx, type TxConfig } from '../../src/index.js';
import { scriptArgs } from '../support/childScript.js';
import { type E2eStats, typeAhead } from '../support/e2eServer.js';
import { eventually, until } from '../support/fixture.js';

const serverScript = new URL('../support/stdioServer.ts', import.meta.url).pathname;

/**
 * The e2e server in a child process over stdio, with `stats` to read what it did: mcp-tx starts it
 * (`createMcpTx(connect)`) and starts a new one whenever the connection drops. `transports` holds
 * each one made, so that a test can kill the current child. Resolves once connected.
 */
async function connectStdio(config: TxConfig = {}) {
  const transports: StdioClientTransport[] = [];
  const tx = createMcpTx(
    () => {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: scriptArgs(serverScript),
        stderr: 'ignore',
      });
      transports.push(transport);
      return transport;
    },
    { retry: { baseDelayMs: 5, maxDelayMs: 50, jitter: false }, ...config },
  );
  const states: ConnectionState[] = [];
  tx.connection$.subscribe((state) => states.push(state));
  const stats = async () => (await tx.call('stats', {}, { dedupe: false })).data as E2eStats;
  const connections = () => states.filter(({ state }) => state === 'connected').length;
  await tx.ready;
  return { tx, transports, stats, connections };
}

let open: { tx: McpTx } | undefined;
afterEach(async () => {
  await open?.tx.close({ timeoutMs: 1_000 });
  open = undefined;
});

describe('over stdio, with the server in a child process', () => {
  it('runs the effect once when the response is lost to a client timeout and the call is retried', async () => {
    const stdio = await connectStdio({ dedupe: false });
    open = stdio;
    const result = await stdio.tx.call(
      'charge',
      { id: 'lost-1', answerAfterMs: 300 },
      { idempotencyKey: 'lost-1', timeoutMs: 100, retry: { maxAttempts: 10 } },
    );
    expect(result.meta.duplicate).toBe(true);
    expect(result.meta.attempts).toBeGreaterThan(1);
    expect((await stdio.stats()).effects['lost-1']).toBe(1);
  });

  it('completes every call of a burst through a server killed and restarted mid-burst', async () => {
    const stdio = await connectStdio({
      retry: { maxAttempts: 30, baseDelayMs: 20, maxDelayMs: 200, jitter: false },
    });
    open = stdio;
    let finished = 0;
    const burst = lastValueFrom(
      from(Array.from({ length: 60 }, (_, index) => index)).pipe(
        mergeMap(
          (index) =>
            stdio.tx
              .call('charge', { id: `b${index}`, answerAfterMs: 10 }, { idempotencyKey: `b${index}` })
              .then((r) => {
                finished += 1;
                return r;
              }),
          6,
        ),
        toArray(),
      ),
    );
    await until(() => finished >= 10, 10_000);
    const first = stdio.transports[0];
    process.kill(first?.pid as number, 'SIGKILL');
    const results = await burst;
    expect(results).toHaveLength(60);
    expect(results.every((result) => result.meta.status === 'completed')).toBe(true);
    expect(stdio.connections()).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('cancels stale calls on the wire under switchMap: the server sees the cancellations', async () => {
    const stdio = await connectStdio();
    open = stdio;
    expect(await typeAhead(stdio.tx)).toHaveLength(1);
    await eventually(async () => (await stdio.stats()).aborted === 2);
  }, 20_000);
});
