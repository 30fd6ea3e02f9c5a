/**
 * `createMcpTx(connect)` over stdio with real server processes that die: a server that exits by
 * itself every 37 calls (its txTool store and its effects in Redis), one that cannot start, and
 * the calls caught in between.
 */
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import {
  type ConnectionState,
  createMcpTx,
  isTxError,
  type TxConfig,
  TxErrorCode,
  type TxResult,
} from '../../src/index.js';
import { scriptArgs } from '../support/childScript.js';
import { eventually, until } from '../support/fixture.js';
import { redisUrl, testRedis } from '../support/redis.js';

const serverScript = new URL('../support/reconnectStdioServer.ts', import.meta.url).pathname;
const { redis, prefix } = testRedis();

/** Whether a process with this id is still there. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

/**
 * An McpTx whose transport factory starts `command` (by default the crashing server, with `env`),
 * closed when the test ends; the pid of every process it started, and every `connection$` value.
 */
function connectStdio(
  { onTestFinished }: TestContext,
  env: Record<string, string>,
  config: TxConfig = {},
  command?: () => string[],
) {
  const pids: number[] = [];
  const connect = () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: command?.() ?? scriptArgs(serverScript),
      env: { ...(process.env as Record<string, string>), REDIS_URL: redisUrl, ...env },
      stderr: 'ignore',
    });
    const start = transport.start.bind(transport);
    transport.start = async () => {
      await start();
      if (transport.pid !== null) pids.push(transport.pid);
    };
    return transport;
  };
  const tx = createMcpTx(connect, config);
  onTestFinished(() => tx.close({ timeoutMs: 1_000 }));
  const states: ConnectionState[] = [];
  tx.connection$.subscribe((state) => states.push(state));
  return { tx, pids, states, connects: () => states.filter(({ state }) => state === 'connected').length };
}

/** Every call of `calls`, `inFlight` at a time; each one's result or error, in the order of `calls`. */
async function burst<T>(calls: readonly T[], inFlight: number, call: (item: T) => Promise<TxResult>) {
  const outcomes: unknown[] = [];
  await lastValueFrom(
    from(calls.map((item, index) => [item, index] as const)).pipe(
      mergeMap(async ([item, index]) => {
        outcomes[index] = await call(item).catch((error: unknown) => error);
      }, inFlight),
      toArray(),
    ),
  );
  return outcomes;
}

const hash = async (key: string) => redis.hgetall(`${key}`);

// Each test has its own chain of server processes and mostly waits for them to start: side by side.
describe.concurrent('a stdio server that exits by itself every 37 calls', () => {
  it('completes 500 keyed calls at 16 in flight, each effect exactly once, across ≥ 13 reconnects', async (context) => {
    const run = `${prefix}keyed:`;
    const { tx, pids, connects } = connectStdio(
      context,
      { PREFIX: run, EXIT_EVERY: '37' },
      { retry: { maxAttempts: 10, baseDelayMs: 20, maxDelayMs: 200 }, reconnect: { baseDelayMs: 20 } },
    );
    const ids = Array.from({ length: 500 }, (_, index) => `order-${index}`);
    const outcomes = await burst(ids, 16, (id) => tx.call('charge', { id }, { idempotencyKey: id }));

    const failures = outcomes.filter((outcome) => isTxError(outcome));
    expect(failures).toEqual([]);
    const results = outcomes as TxResult[];
    expect(results.map((result) => result.meta.status)).toEqual(ids.map(() => 'completed'));
    const charges = await hash(`${run}charges`);
    expect(Object.keys(charges).sort()).toEqual([...ids].sort());
    expect(Object.values(charges).every((count) => count === '1')).toBe(true);
    expect(connects() - 1).toBeGreaterThanOrEqual(13);
    expect(results.some((result) => result.meta.attempts > 1)).toBe(true);

    await tx.close();
    expect(pids.length).toBe(connects());
    await eventually(async () => pids.every((pid) => !isRunning(pid)));
    expect(unhandled).toEqual([]);
  }, 180_000);

  it('fails unkeyed destructive calls caught by an exit as ambiguous, not retried; retries read-only ones', async (context) => {
    const run = `${prefix}mixed:`;
    const { tx, pids, connects } = connectStdio(
      context,
      { PREFIX: run, EXIT_EVERY: '37' },
      { retry: { maxAttempts: 10, baseDelayMs: 20, maxDelayMs: 200 }, reconnect: { baseDelayMs: 20 } },
    );
    const calls = Array.from({ length: 300 }, (_, index) => ({
      tool: index % 2 === 0 ? 'mutate' : 'lookup',
      id: `c${index}`,
    }));
    const outcomes = await burst(calls, 16, ({ tool, id }) => tx.call(tool, { id }));
    const byTool = (tool: string) =>
      calls.flatMap((call, index) => (call.tool === tool ? [{ ...call, outcome: outcomes[index] }] : []));

    // Read-only: every one completes, those caught by an exit after more than one attempt.
    const lookups = byTool('lookup');
    expect(lookups.every(({ outcome }) => !isTxError(outcome))).toBe(true);
    expect(lookups.some(({ outcome }) => (outcome as TxResult).meta.attempts > 1)).toBe(true);

    // Destructive, no key: a call caught by an exit fails after its one attempt, saying why.
    const mutations = await hash(`${run}mutations`);
    const failed = byTool('mutate').filter(({ outcome }) => isTxError(outcome));
    expect(failed.length).toBeGreaterThan(0);
    for (const { id, outcome } of failed) {
      expect(outcome).toMatchObject({ code: TxErrorCode.NetworkError, ambiguous: true, retryable: false });
      expect(isTxError(outcome) && outcome.message).toContain(
        'not retried: the request may already have run',
      );
      expect(isTxError(outcome) && outcome.meta?.attempts).toBe(1);
      expect(Number(mutations[id] ?? 0)).toBeLessThanOrEqual(1);
    }
    for (const { id, outcome } of byTool('mutate').filter(({ outcome }) => !isTxError(outcome))) {
      expect((outcome as TxResult).meta.status).toBe('completed');
      expect(mutations[id]).toBe('1');
    }
    expect(connects() - 1).toBeGreaterThanOrEqual(7);

    await tx.close();
    await eventually(async () => pids.every((pid) => !isRunning(pid)));
    expect(unhandled).toEqual([]);
  }, 180_000);
});

describe('closing and giving up with real processes', () => {
  /** A "server" that exits at once: every connection attempt fails. */
  const exitsAtOnce = () => ['-e', 'process.exit(3)'];

  it('close() while reconnecting ends at once: waiting calls fail MCP_TX_CANCELLED, no process left', async (context) => {
    let broken = false;
    const { tx, pids, states } = connectStdio(
      context,
      { PREFIX: `${prefix}close:`, EXIT_EVERY: '1' },
      { retry: { maxAttempts: 5, baseDelayMs: 10 }, reconnect: { baseDelayMs: 50, maxDelayMs: 200 } },
      () => (broken ? exitsAtOnce() : scriptArgs(serverScript)),
    );
    await tx.ready;
    broken = true;
    const caught = tx.call('lookup', { id: 'last' }, { timeoutMs: 60_000 }).catch((error: unknown) => error);
    await until(() => states.filter(({ state }) => state === 'reconnecting').length >= 3, 15_000);
    const waiting = tx
      .call('lookup', { id: 'waiting' }, { timeoutMs: 60_000 })
      .catch((error: unknown) => error);

    const started = Date.now();
    await tx.close({ timeoutMs: 30_000 });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await caught).toMatchObject({ code: TxErrorCode.Cancelled });
    expect(await waiting).toMatchObject({ code: TxErrorCode.Cancelled });
    expect(states.at(-1)).toMatchObject({ state: 'closed' });
    expect(pids.length).toBeGreaterThanOrEqual(3);
    expect(pids.filter(isRunning)).toEqual([]);
    expect(unhandled).toEqual([]);
  }, 30_000);

  it('reconnect: false — the server exits, the McpTx is closed, calls fail at once', async (context) => {
    const { tx, pids, states } = connectStdio(
      context,
      { PREFIX: `${prefix}off:`, EXIT_EVERY: '2' },
      { reconnect: false, retry: { maxAttempts: 3, baseDelayMs: 10 } },
    );
    expect((await tx.call('lookup', { id: 'one' })).meta.status).toBe('completed');
    const second = await tx.call('lookup', { id: 'two' }).catch((error: unknown) => error);
    expect(second).toMatchObject({ code: TxErrorCode.NetworkError, retryable: false });
    expect(states.map(({ state }) => state)).toEqual(['connecting', 'connected', 'closed']);
    expect(states.at(-1)?.error?.message).toContain('closed');
    expect(pids).toHaveLength(1);
  }, 30_000);

  it('gives up after maxAttempts on a server that cannot start; ready rejects with the cause', async (context) => {
    const { tx, pids, states } = connectStdio(
      context,
      {},
      { reconnect: { baseDelayMs: 10, maxAttempts: 3 } },
      exitsAtOnce,
    );
    const error = await tx.ready.catch((failure: unknown) => failure);
    expect(error).toMatchObject({ code: TxErrorCode.NetworkError });
    expect(states.map(({ state, attempt }) => `${state}#${attempt}`)).toEqual([
      'connecting#1',
      'connecting#2',
      'connecting#3',
      'closed#3',
    ]);
    expect(pids).toHaveLength(3);
    await eventually(async () => pids.every((pid) => !isRunning(pid)));
  }, 30_000);
});
