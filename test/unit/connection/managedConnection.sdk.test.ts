/**
 * `createMcpTx(connect)`: the connection mcp-tx owns, over a real SDK Client and real McpServers on
 * InMemoryTransport (a new server per connection, as a restarted process), with the McpTx's timers
 * in virtual time.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  filter,
  firstValueFrom,
  lastValueFrom,
  type Subscription,
  toArray,
  VirtualTimeScheduler,
} from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ConnectionState,
  createMcpTx,
  HealthMonitor,
  type McpTx,
  type TxConfig,
  TxError,
  TxErrorCode,
} from '../../../src/index.js';
import { expectFailure, until } from '../../support/fixture.js';
import { type InMemoryUpstream, inMemoryUpstream } from '../../support/inMemoryUpstream.js';
import { advanceVirtual } from '../../support/virtualTime.js';

let tx: McpTx | undefined;
let clock: VirtualTimeScheduler | undefined;
let watching: Subscription | undefined;
afterEach(async () => {
  watching?.unsubscribe();
  if (tx !== undefined && clock !== undefined) await along(clock, tx.close({ timeoutMs: 100 }));
  tx = undefined;
});

/** Advances `scheduler` in steps of `stepMs` until `promise` settles (at most `maxMs`); its outcome. */
async function along<T>(scheduler: VirtualTimeScheduler, promise: Promise<T>, stepMs = 10, maxMs = 120_000) {
  let done = false;
  const watched = promise.finally(() => {
    done = true;
  });
  watched.catch(() => undefined);
  for (let waited = 0; !done && waited < maxMs; waited += stepMs) await advanceVirtual(scheduler, stepMs);
  return watched;
}

const NO_JITTER = { baseDelayMs: 100, multiplier: 2, maxDelayMs: 1_000, jitter: false } as const;

/** An McpTx on `upstream` in virtual time, and every `connection$` value it tells. */
function open(
  upstream: Pick<InMemoryUpstream, 'connect'>,
  config: Omit<TxConfig, 'scheduler'> = {},
  scheduler = new VirtualTimeScheduler(),
) {
  clock = scheduler;
  tx = createMcpTx(upstream.connect, { reconnect: NO_JITTER, retry: false, ...config, scheduler });
  const states: ConnectionState[] = [];
  watching = tx.connection$.subscribe((state) => states.push(state));
  const current = () => states.at(-1) as ConnectionState;
  return { tx, scheduler, states, current };
}

/** Advances `scheduler` by `ms` in 10 ms steps, letting the SDK answer between them. */
async function stepped(scheduler: VirtualTimeScheduler, ms: number): Promise<void> {
  for (let moved = 0; moved < ms; moved += 10) await advanceVirtual(scheduler, 10);
}

/** Whether a promise has settled, without waiting for it. */
function settled(promise: Promise<unknown>): () => boolean {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  return () => done;
}

describe('createMcpTx(connect): connecting', () => {
  it('returns at once and connects in the background; a call made meanwhile waits, and waiting is not an attempt', async () => {
    const upstream = inMemoryUpstream();
    const { tx, states } = open(upstream);
    expect(states).toEqual([{ state: 'connecting', attempt: 1, since: 0, serverSupportsTx: false }]);
    const result = await tx.call('echo', { key: 'early' });
    expect(result.meta).toMatchObject({ status: 'completed', attempts: 1, serverSupportsTx: true });
    await tx.ready;
    expect(states.map(({ state, attempt }) => [state, attempt])).toEqual([
      ['connecting', 1],
      ['connected', 0],
    ]);
    expect(states[1]).toMatchObject({ serverSupportsTx: true, since: 0 });
    expect(states[1]?.error).toBeUndefined();
    expect(upstream.calls.map((call) => call.tool)).toEqual(['echo']);
  });

  it('makes the SDK client itself: MCP-Tx capabilities, clientInfo mcp-tx and its version by default', async () => {
    const { version } = (await import('../../../package.json', { with: { type: 'json' } })).default;
    const upstream = inMemoryUpstream();
    const seen: unknown[] = [];
    const connect = async () => {
      const transport = await upstream.connect();
      const send = transport.send.bind(transport);
      transport.send = (message, options) => {
        if ('method' in message && message.method === 'initialize') seen.push(message.params);
        return send(message, options);
      };
      return transport;
    };
    const { tx } = open({ connect });
    await tx.ready;
    expect(seen[0]).toMatchObject({
      clientInfo: { name: 'mcp-tx', version },
      capabilities: { experimental: { mcp_tx: { version: '0.1.0' } } },
    });
    await tx.close();

    const named = open({ connect }, { clientInfo: { name: 'agent', version: '2.0.0' } });
    await named.tx.ready;
    expect(seen[1]).toMatchObject({ clientInfo: { name: 'agent', version: '2.0.0' } });
  });

  it('retries a first connection that fails with the backoff in virtual time (the first at once), connection$ carrying each error', async () => {
    const upstream = inMemoryUpstream();
    upstream.setMode('refusing');
    const scheduler = new VirtualTimeScheduler();
    const connectedAt: number[] = [];
    const connect = () => {
      connectedAt.push(scheduler.now());
      return upstream.connect();
    };
    const { tx, states, current } = open({ connect }, {}, scheduler);
    for (let step = 0; step < 40; step++) await advanceVirtual(scheduler, 100);
    expect(connectedAt).toEqual([0, 100, 300, 700, 1_500, 2_500, 3_500]);
    expect(states.map(({ attempt }) => attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(current()).toMatchObject({ state: 'connecting', attempt: 8, since: 0 });
    expect(current().error?.message).toContain('initialize refused: the server is starting');
    expect(current().error?.code).toBe(TxErrorCode.NetworkError);

    upstream.setMode('up');
    await advanceVirtual(scheduler, 1_000);
    expect(current()).toMatchObject({ state: 'connected', attempt: 0, since: 4_500 });
    await tx.ready;
  });

  it('counts the backoff of a lost connection from the first reconnect: 100, 200, 400… ms after the loss', async () => {
    const upstream = inMemoryUpstream();
    const { tx, scheduler, states, current } = open(upstream);
    await tx.ready;
    await advanceVirtual(scheduler, 1_000);
    const connectsBefore = upstream.connects;
    upstream.setMode('down');
    await upstream.drop();
    expect(current()).toMatchObject({ state: 'reconnecting', attempt: 1, since: 1_000 });
    expect(current().error?.message).toContain('closed');
    const attemptsAt: Array<[number, number]> = [];
    for (let step = 0; step < 20; step++) {
      await advanceVirtual(scheduler, 50);
      if (upstream.connects > connectsBefore + attemptsAt.length)
        attemptsAt.push([scheduler.now(), upstream.connects - connectsBefore]);
    }
    expect(attemptsAt).toEqual([
      [1_100, 1],
      [1_300, 2],
      [1_700, 3],
    ]);
    upstream.setMode('up');
    await advanceVirtual(scheduler, 800);
    expect(current()).toMatchObject({ state: 'connected', attempt: 0, since: 2_500 });
    expect(states.map(({ state }) => state)).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'reconnecting',
      'reconnecting',
      'reconnecting',
      'connected',
    ]);
    expect(upstream.servers).toBe(2);
  });

  it('gives up after maxAttempts: closed with the error; ready, waiting and later calls fail with it', async () => {
    const upstream = inMemoryUpstream();
    upstream.setMode('down');
    const { tx, scheduler, current } = open(upstream, { reconnect: { ...NO_JITTER, maxAttempts: 3 } });
    const waiting = tx.call('echo', { key: 'w' }, { timeoutMs: 60_000 }).catch((error: unknown) => error);
    await advanceVirtual(scheduler, 1_000);
    expect(upstream.connects).toBe(3);
    expect(current()).toMatchObject({ state: 'closed', attempt: 3 });
    expect(current().error?.message).toContain('Not connected');
    const failure = (await waiting) as TxError;
    expect(failure).toBeInstanceOf(TxError);
    expect(failure).toMatchObject({ code: TxErrorCode.NetworkError, retryable: false, ambiguous: false });
    expect(failure.message).toContain('gave up after 3 attempts');
    expect(failure.meta?.attempts).toBe(0);
    await expect(tx.ready).rejects.toMatchObject({ code: TxErrorCode.NetworkError });
    const later = await expectFailure(tx.call('echo', { key: 'later' }));
    expect(later.message).toContain('gave up after 3 attempts');
    expect(upstream.calls).toEqual([]);
  });

  it('bounds each attempt by connectTimeoutMs: a server that never answers initialize is tried again', async () => {
    const upstream = inMemoryUpstream();
    upstream.setMode('silent');
    const { tx, scheduler, current } = open(upstream, {
      reconnect: { ...NO_JITTER, connectTimeoutMs: 2_000 },
    });
    await advanceVirtual(scheduler, 1_999);
    expect(current()).toMatchObject({ state: 'connecting', attempt: 1 });
    await advanceVirtual(scheduler, 1);
    expect(current()).toMatchObject({ state: 'connecting', attempt: 2 });
    expect(current().error).toMatchObject({ code: TxErrorCode.Timeout });
    expect(current().error?.message).toContain('within 2000 ms');
    upstream.setMode('up');
    await advanceVirtual(scheduler, 100);
    await tx.ready;
    expect(upstream.connects).toBe(2);
  });
});

describe('createMcpTx(connect): calls while not connected', () => {
  it('fails a call whose timeout passes while waiting: MCP_TX_NETWORK_ERROR, retryable, not ambiguous, nothing sent, the connection error inside', async () => {
    const upstream = inMemoryUpstream();
    upstream.setMode('refusing');
    const { tx, scheduler } = open(upstream);
    const call = tx.call('write', { key: 'w' }, { timeoutMs: 500 });
    const done = settled(call);
    await advanceVirtual(scheduler, 499);
    expect(done()).toBe(false);
    await advanceVirtual(scheduler, 1);
    const error = await expectFailure(call);
    expect(error).toMatchObject({ code: TxErrorCode.NetworkError, retryable: true, ambiguous: false });
    expect(error.message).toContain(
      "Not connected to the MCP server: no connection within the attempt's 500 ms",
    );
    expect(error.message).toContain('initialize refused');
    expect(error.cause).toBeInstanceOf(TxError);
    expect(error.meta).toMatchObject({ attempts: 0, status: 'failed', ack: false });
    expect(upstream.calls).toEqual([]);
    expect(upstream.effects.size).toBe(0);
  });

  it('retries such a failure like any retryable one: the next attempt waits again, and is sent once connected', async () => {
    const upstream = inMemoryUpstream();
    upstream.setMode('down');
    const { tx, scheduler } = open(upstream, { retry: { maxAttempts: 5, baseDelayMs: 100, jitter: false } });
    const call = tx.call('write', { key: 'w' }, { timeoutMs: 300 });
    await advanceVirtual(scheduler, 800);
    upstream.setMode('up');
    await advanceVirtual(scheduler, 2_000);
    const result = await call;
    expect(result.meta).toMatchObject({ status: 'completed', attempts: 1 });
    expect(upstream.effects.get('write:w')).toBe(1);
  });

  it('a connected call does not wait: the gate is asked nothing but `connected`', async () => {
    const upstream = inMemoryUpstream();
    const { tx } = open(upstream);
    await tx.ready;
    const call = tx.attempt$('echo', { key: 'k' });
    const gate = call.env.connection;
    expect(gate?.connected).toBe(true);
    const whenConnected = vi.spyOn(gate as NonNullable<typeof gate>, 'whenConnected');
    await firstValueFrom(call);
    await tx.call('echo', { key: 'k2' });
    expect(whenConnected).not.toHaveBeenCalled();
  });
});

describe('createMcpTx(connect): a call caught by a lost connection', () => {
  /** Calls held by the server when it exits, and the results once reconnected. */
  async function caughtByDrop(calls: (tx: McpTx) => Array<Promise<unknown>>, config: TxConfig = {}) {
    const upstream = inMemoryUpstream();
    const { tx, scheduler, current } = open(upstream, {
      retry: { maxAttempts: 3, baseDelayMs: 10, jitter: false },
      ...config,
    });
    await tx.ready;
    const outcomes = calls(tx).map((call) => call.catch((error: unknown) => error));
    await until(() => upstream.heldCalls === outcomes.length);
    await upstream.drop();
    expect(current().state).toBe('reconnecting');
    const settled = await along(scheduler, Promise.all(outcomes));
    expect(current().state).toBe('connected');
    return { upstream, outcomes: settled };
  }

  it('re-issues a keyed call to an MCP-Tx server after the reconnect: the same request_id, retry_count + 1, a new JSON-RPC id', async () => {
    const { upstream, outcomes } = await caughtByDrop((tx) => [
      tx.call('charge', { key: 'k1', hold: true }, { idempotencyKey: 'charge-k1' }),
    ]);
    const [result] = outcomes as Array<{ meta: { attempts: number; status: string } }>;
    expect(result?.meta).toMatchObject({ status: 'completed', attempts: 2 });
    const [first, second] = upstream.calls;
    expect(first?.server).toBe(1);
    expect(second?.server).toBe(2);
    expect(second?.wire?.request_id).toBe(first?.wire?.request_id);
    expect([first?.wire?.retry_count, second?.wire?.retry_count]).toEqual([0, 1]);
    expect(second?.jsonRpcId).not.toBe(first?.jsonRpcId);
  });

  it('fails an unkeyed call to a tool not known safe to repeat: ambiguous MCP_TX_NETWORK_ERROR, not retried, saying why', async () => {
    const { upstream, outcomes } = await caughtByDrop((tx) => [tx.call('write', { key: 'd', hold: true })]);
    const [error] = outcomes as TxError[];
    expect(error).toBeInstanceOf(TxError);
    expect(error).toMatchObject({ code: TxErrorCode.NetworkError, ambiguous: true, retryable: false });
    expect(error?.message).toContain('not retried: the request may already have run');
    expect(error?.meta?.attempts).toBe(1);
    expect(upstream.calls.filter((call) => call.tool === 'write')).toHaveLength(1);
    expect(upstream.effects.get('write:d')).toBe(1);
  });

  it('retries a readOnly call after the reconnect, the annotations listed on the new connection', async () => {
    const { upstream, outcomes } = await caughtByDrop((tx) => [tx.call('read', { key: 'r', hold: true })]);
    const [result] = outcomes as Array<{ data: { server: number }; meta: { attempts: number } }>;
    expect(result?.meta.attempts).toBe(2);
    expect(result?.data.server).toBe(2);
    expect(upstream.calls.map((call) => call.server)).toEqual([1, 2]);
  });

  it('retries any of them with retryAmbiguous', async () => {
    const { outcomes } = await caughtByDrop((tx) => [tx.call('write', { key: 'a', hold: true })], {
      retry: { retryAmbiguous: true, baseDelayMs: 10 },
    });
    expect((outcomes[0] as { meta: { attempts: number } }).meta.attempts).toBe(2);
  });

  it('reads serverSupportsTx and the tool annotations again on every connect', async () => {
    const upstream = inMemoryUpstream({ serverTx: (server) => server >= 2, echoReadOnlyFrom: 4 });
    const { tx, scheduler, states } = open(upstream, { retry: { maxAttempts: 3, baseDelayMs: 10 } });
    await tx.ready;
    expect(tx.serverSupportsTx).toBe(false);
    // Server 1 (plain MCP) exits with an echo in flight, before its tools were listed: they are
    // listed on server 2, where echo is not read-only: not retried.
    const first = tx.call('echo', { key: 'e1', hold: true }).catch((error: unknown) => error);
    await until(() => upstream.heldCalls === 1);
    await upstream.drop();
    expect(((await along(scheduler, first)) as TxError).message).toContain('not retried');
    expect(tx.serverSupportsTx).toBe(true);
    // Server 2 (MCP-Tx) exits: its own listing says echo is not read-only.
    const second = tx.call('echo', { key: 'e2', hold: true }).catch((error: unknown) => error);
    await until(() => upstream.heldCalls === 1);
    await upstream.drop();
    expect(((await along(scheduler, second)) as TxError).message).toContain('not retried');
    // Server 3 exits unlisted: listed again on server 4, where echo is read-only: retried.
    await along(scheduler, firstValueFrom(tx.connection$.pipe(filter(({ state }) => state === 'connected'))));
    const third = tx.call('echo', { key: 'e3', hold: true });
    await until(() => upstream.heldCalls === 1);
    await upstream.drop();
    const retried = await along(scheduler, third);
    expect(retried.meta.attempts).toBe(2);
    expect(retried.data).toMatchObject({ server: 4 });
    expect(states.filter(({ state }) => state === 'connected').map((s) => s.serverSupportsTx)).toEqual([
      false,
      true,
      true,
      true,
    ]);
  });
});

describe('createMcpTx(connect): closing, giving up, bad input', () => {
  it('close() while reconnecting ends at once: waiting calls fail MCP_TX_CANCELLED, no timer is left', async () => {
    const upstream = inMemoryUpstream();
    const { tx, scheduler, states } = open(upstream, { retry: { maxAttempts: 5, baseDelayMs: 10 } });
    await tx.ready;
    upstream.setMode('down');
    await upstream.drop();
    await advanceVirtual(scheduler, 250);
    const waiting = [
      tx.call('echo', { key: 'a' }, { timeoutMs: 60_000 }),
      tx.call('read', { key: 'b' }, { timeoutMs: 60_000 }),
    ].map((call) => call.catch((error: unknown) => error));
    await advanceVirtual(scheduler, 10);
    expect(tx.activeRequests.size).toBe(2);
    await tx.close({ timeoutMs: 60_000 }); // resolves without virtual time passing
    for (const error of await Promise.all(waiting)) {
      expect(error).toBeInstanceOf(TxError);
      expect((error as TxError).code).toBe(TxErrorCode.Cancelled);
    }
    expect(states.at(-1)).toMatchObject({ state: 'closed', attempt: 0 });
    expect(states.at(-1)?.error).toBeUndefined();
    expect(scheduler.actions).toEqual([]);
    expect(await lastValueFrom(tx.connection$.pipe(toArray()))).toEqual([states.at(-1)]);
    expect(upstream.calls).toEqual([]);
  });

  it('close() before the first connection: ready rejects with MCP_TX_CANCELLED, never unhandled', async () => {
    const upstream = inMemoryUpstream();
    upstream.setMode('down');
    const { tx, scheduler } = open(upstream);
    await advanceVirtual(scheduler, 150);
    await tx.close();
    await expect(tx.ready).rejects.toMatchObject({ code: TxErrorCode.Cancelled });
    expect(scheduler.actions).toEqual([]);
    // An McpTx nobody awaits: its ready rejection is not reported as unhandled (vitest would fail the run).
    const unobserved = createMcpTx(() => upstream.connect(), { scheduler: new VirtualTimeScheduler() });
    await unobserved.close();
  });

  it('closes the connection when close() finds it connected: the calls in flight finish first', async () => {
    const upstream = inMemoryUpstream();
    const { tx, current } = open(upstream);
    await tx.ready;
    const inFlight = tx.call('echo', { key: 'f', hold: true });
    await until(() => upstream.heldCalls === 1);
    const closing = tx.close({ timeoutMs: 60_000 });
    upstream.release();
    expect((await inFlight).meta.status).toBe('completed');
    await closing;
    expect(current()).toMatchObject({ state: 'closed' });
  });

  it('reconnect: false — a lost connection is closed; calls fail at once, saying so', async () => {
    const upstream = inMemoryUpstream();
    const { tx, current } = open(upstream, { reconnect: false });
    await tx.ready;
    const caught = tx.call('write', { key: 'x', hold: true }).catch((error: unknown) => error);
    await until(() => upstream.heldCalls === 1);
    await upstream.drop();
    expect(current()).toMatchObject({ state: 'closed' });
    expect(current().error?.message).toContain('closed');
    expect(await caught).toMatchObject({ code: TxErrorCode.NetworkError, ambiguous: true });
    const later = await expectFailure(tx.call('echo', { key: 'later' }));
    expect(later).toMatchObject({ code: TxErrorCode.NetworkError, retryable: false });
    expect(later.message).toContain('reconnect is off');
    expect(upstream.connects).toBe(1);
  });

  it('reconnect: false — a first connection that fails closes the McpTx', async () => {
    const upstream = inMemoryUpstream();
    upstream.setMode('refusing');
    const { tx, current } = open(upstream, { reconnect: false });
    await expect(tx.ready).rejects.toMatchObject({ code: TxErrorCode.NetworkError });
    expect(current()).toMatchObject({ state: 'closed', attempt: 1 });
    expect(upstream.connects).toBe(1);
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('no such server');
      },
      'threw: no such server',
    ],
    ['rejects', () => Promise.reject(new Error('lookup failed')), 'threw: lookup failed'],
    [
      'returns a non-transport',
      () => ({ url: 'http://x' }) as unknown as Transport,
      'did not return a Transport',
    ],
  ])(
    'a connect factory that %s: MCP_TX_VALIDATION at the first connect, no loop',
    async (_, connect, reason) => {
      const scheduler = new VirtualTimeScheduler();
      const factory = vi.fn(connect);
      tx = createMcpTx(factory, { scheduler });
      const error = await tx.ready.then(
        () => undefined,
        (failure: unknown) => failure as TxError,
      );
      expect(error).toMatchObject({ code: TxErrorCode.Validation, field: 'connect' });
      expect(error?.message).toContain(reason);
      const state = await firstValueFrom(tx.connection$);
      expect(state).toMatchObject({ state: 'closed', attempt: 1, error: { code: TxErrorCode.Validation } });
      const call = await expectFailure(tx.call('echo', { key: 'k' }));
      expect(call.code).toBe(TxErrorCode.Validation);
      await advanceVirtual(scheduler, 60_000);
      expect(factory).toHaveBeenCalledTimes(1);
    },
  );

  it('a factory that returns the same transport twice is a mistake too', async () => {
    const upstream = inMemoryUpstream();
    let first: Transport | undefined;
    const { tx, scheduler, current } = open({
      connect: async () => {
        first ??= await upstream.connect();
        return first;
      },
    });
    await tx.ready;
    await upstream.drop();
    await advanceVirtual(scheduler, 200);
    expect(current()).toMatchObject({ state: 'closed', error: { code: TxErrorCode.Validation } });
    expect(current().error?.message).toContain('returned a transport it returned before');
  });

  it('a factory that throws after having made a transport counts as a failed attempt', async () => {
    const upstream = inMemoryUpstream();
    let failing = false;
    const { tx, scheduler, current } = open({
      connect: () => {
        if (failing) throw new Error('discovery is down');
        return upstream.connect();
      },
    });
    await tx.ready;
    failing = true;
    await upstream.drop();
    await advanceVirtual(scheduler, 100);
    expect(current()).toMatchObject({ state: 'reconnecting', attempt: 2 });
    expect(current().error?.message).toContain('discovery is down');
    failing = false;
    await advanceVirtual(scheduler, 200);
    expect(current().state).toBe('connected');
  });
});

describe('createMcpTx(connect): what else ends a connection', () => {
  it('a ping that fails (pingIntervalMs) ends it and reconnects', async () => {
    const upstream = inMemoryUpstream();
    const { tx, scheduler, current } = open(upstream, {
      pingIntervalMs: 1_000,
      reconnect: { ...NO_JITTER, connectTimeoutMs: 500 },
    });
    await tx.ready;
    const pings = () => upstream.pings;
    await stepped(scheduler, 3_000);
    expect(current()).toMatchObject({ state: 'connected', since: 0 });
    expect(pings()).toBe(3);
    upstream.mute();
    await stepped(scheduler, 1_000); // the ping is sent…
    expect(current().state).toBe('connected');
    await stepped(scheduler, 500); // …and not answered within min(pingIntervalMs, connectTimeoutMs)
    expect(current()).toMatchObject({ state: 'reconnecting', attempt: 1, since: 4_500 });
    expect(current().error?.message).toContain('did not answer a ping');
    await stepped(scheduler, 100);
    expect(current()).toMatchObject({ state: 'connected', since: 4_600 });
    expect((await tx.call('echo', { key: 'after' })).data).toMatchObject({ server: 2 });
  });

  it('a transport error is checked with a ping: nothing happens while the server answers', async () => {
    const upstream = inMemoryUpstream();
    let transport: Transport | undefined;
    const { tx, scheduler, current } = open({
      connect: async () => {
        transport = await upstream.connect();
        return transport;
      },
    });
    await tx.ready;
    transport?.onerror?.(new Error('a malformed message'));
    await advanceVirtual(scheduler, 100);
    expect(current().state).toBe('connected');
    upstream.mute();
    transport?.onerror?.(new Error('SSE stream disconnected: TypeError: terminated'));
    await advanceVirtual(scheduler, 10_000);
    expect(current().state).not.toBe('connected');
    expect(current().error?.message).toContain('after a transport error (SSE stream disconnected');
  });

  it('keeps the same SDK client across reconnects', async () => {
    const upstream = inMemoryUpstream();
    const { tx, scheduler } = open(upstream);
    await tx.ready;
    const client = tx.client;
    await upstream.drop();
    await advanceVirtual(scheduler, 200);
    await tx.call('echo', { key: 'k' });
    expect(tx.client).toBe(client);
    expect(upstream.servers).toBe(2);
  });

  it('tells config.monitor every connection$ value', async () => {
    const upstream = inMemoryUpstream();
    const monitor = new HealthMonitor();
    const told = vi.spyOn(monitor, 'recordConnection');
    const { tx, scheduler, states } = open(upstream, { monitor });
    await tx.ready;
    await upstream.drop();
    await advanceVirtual(scheduler, 200);
    await tx.close();
    expect(told.mock.calls.map(([state]) => state)).toEqual(states);
    expect(states.map(({ state }) => state)).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'connected',
      'closed',
    ]);
    expect(monitor.report().connection).toMatchObject({ reconnects: 1, state: 'closed' });
  });
});
