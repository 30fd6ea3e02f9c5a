/**
 * An HTTP session the server forgets (it expired, say): the server answers `404` to its requests,
 * and `createMcpTx(connect)` starts a new session with a fresh `initialize` (a new transport from
 * the factory, no session id). Real Streamable HTTP on loopback, real time.
 */
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionState, createMcpTx, type McpTx, perRequestSignalFetch } from '../../../src/index.js';
import { until } from '../../support/fixture.js';
import { type SessionHttpServer, startSessionHttpServer } from '../../support/sessionHttpServer.js';

let server: SessionHttpServer | undefined;
let tx: McpTx | undefined;
afterEach(async () => {
  await tx?.close({ timeoutMs: 1_000 });
  await server?.close();
  tx = undefined;
  server = undefined;
});

async function open() {
  const effects = new Map<string, number>();
  server = await startSessionHttpServer({
    count: (key, result) => {
      effects.set(key, (effects.get(key) ?? 0) + 1);
      return result;
    },
  });
  const { url } = server;
  const transports: StreamableHTTPClientTransport[] = [];
  tx = createMcpTx(
    () => {
      const transport = new StreamableHTTPClientTransport(url, { fetch: perRequestSignalFetch() });
      transports.push(transport);
      return transport;
    },
    {
      reconnect: { baseDelayMs: 10, maxDelayMs: 100 },
      retry: { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 100 },
      timeoutMs: 10_000,
    },
  );
  const states: ConnectionState[] = [];
  tx.connection$.subscribe((state) => states.push(state));
  await tx.ready;
  return { tx, server, effects, states, transports };
}

describe('an HTTP session the server forgets (404)', () => {
  it('starts a new session and the call goes on; a request refused with 404 is not ambiguous: it is retried', async () => {
    const { tx, server, effects, states, transports } = await open();
    expect((await tx.call('charge', { id: 'before' })).meta.status).toBe('completed');
    const firstSession = transports[0]?.sessionId;
    expect(firstSession).toBeDefined();

    await server.forget({ closeStreams: false });
    // No idempotency key, a tool not known to be safe to repeat: retried all the same, since the
    // server refused it without running it.
    const after = await tx.call('charge', { id: 'after' });
    expect(after.meta).toMatchObject({ status: 'completed', attempts: 2 });
    expect(effects.get('after')).toBe(1);
    expect(server.notFound()).toBeGreaterThanOrEqual(1);
    expect(server.sessionsOpened()).toBe(2);
    expect(transports).toHaveLength(2);
    expect(transports[1]?.sessionId).not.toBe(firstSession);
    expect(states.map(({ state }) => state)).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'connected',
    ]);
    expect(states[2]?.error?.message).toContain('404');
  });

  it('keeps a burst going through expiries: every keyed call completes, each effect once', async () => {
    const { tx, server, effects } = await open();
    let finished = 0;
    const burst = lastValueFrom(
      from(Array.from({ length: 120 }, (_, index) => `b${index}`)).pipe(
        mergeMap(
          (id) =>
            tx.call('charge', { id, workMs: 5 }, { idempotencyKey: id }).finally(() => {
              finished += 1;
            }),
          8,
        ),
        toArray(),
      ),
    );
    await until(() => finished >= 30, 10_000);
    await server.forget();
    await until(() => finished >= 80, 10_000);
    await server.forget();
    const results = await burst;
    expect(results).toHaveLength(120);
    expect(results.every((result) => result.meta.status === 'completed')).toBe(true);
    expect([...effects.values()].every((count) => count === 1)).toBe(true);
    expect(effects.size).toBe(120);
    expect(server.sessionsOpened()).toBeGreaterThanOrEqual(3);
  }, 30_000);

  it('notices an expiry with no call in flight (the SSE stream is refused), and is connected again', async () => {
    const { server, states } = await open();
    await server.forget();
    await until(() => states.filter(({ state }) => state === 'connected').length === 2, 10_000);
    expect(server.sessionsOpened()).toBe(2);
  }, 15_000);
});
