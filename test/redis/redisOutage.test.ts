import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis, type RedisOptions } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import {
  type BreakerPermit,
  type BreakerState,
  type TxConfig,
  TxError,
  TxErrorCode,
} from '../../src/index.js';
import { RedisCircuitBreaker, redisIdempotencyStore, redisRateLimiter } from '../../src/redis.js';
import { connectFixture, eventually } from '../support/fixture.js';

function sparePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** A throwaway redis-server (no persistence) this file can kill, pause and start again on the same port. */
class ThrowawayRedis {
  private server: ChildProcess | undefined;
  private readonly clients: Redis[] = [];

  private constructor(
    private readonly port: number,
    private readonly args: readonly string[],
  ) {}

  /** A server started with `args` besides its port and no persistence. */
  static async start(...args: string[]): Promise<ThrowawayRedis> {
    const redis = new ThrowawayRedis(await sparePort(), args);
    await redis.start();
    return redis;
  }

  /** Starts the server and resolves once it accepts connections. */
  start(): Promise<void> {
    const server = spawn('redis-server', [
      '--port',
      `${this.port}`,
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      ...this.args,
    ]);
    this.server = server;
    return new Promise((resolve) => {
      createInterface({ input: server.stdout }).on('line', (line) => {
        if (line.includes('Ready to accept connections')) resolve();
      });
    });
  }

  /** A client of this server, disconnected by {@link stop}; ioredis's defaults unless `options` say. */
  connect(options: RedisOptions = {}): Redis {
    const client = new Redis(this.port, '127.0.0.1', options);
    client.on('error', () => undefined); // refused connections while the server is down
    this.clients.push(client);
    return client;
  }

  kill(): Promise<void> {
    const server = this.server;
    if (server === undefined || server.exitCode !== null || server.signalCode !== null)
      return Promise.resolve();
    return new Promise((resolve) => {
      server.once('exit', () => resolve());
      server.kill('SIGKILL');
    });
  }

  pause(): void {
    this.server?.kill('SIGSTOP');
  }

  resume(): void {
    this.server?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.disconnect();
    await this.kill();
  }
}

let servers: ThrowawayRedis[] = [];
const throwawayRedis = async (...args: string[]) => {
  const server = await ThrowawayRedis.start(...args);
  servers.push(server);
  return server;
};
afterEach(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  servers = [];
});

const storeUnavailable = { code: TxErrorCode.StoreUnavailable, retryable: true };
const timeout = new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true });
const commandTimeoutMs = 200;
const limiterOptions = { key: 'dead:limiter', ratePerSecond: 100, burst: 10, commandTimeoutMs };
const breakerOptions = { key: 'dead:breaker', commandTimeoutMs };
const open = { failOpen: true, onStoreError: () => undefined };

/** `operation`'s outcome, and how long it took (ms). */
async function timed<T>(operation: Promise<T>): Promise<{ outcome: PromiseSettledResult<T>; ms: number }> {
  const started = performance.now();
  const [outcome] = await Promise.allSettled([operation]);
  return { outcome: outcome as PromiseSettledResult<T>, ms: performance.now() - started };
}

/** Expects `operation` to fail with `MCP_TX_STORE_UNAVAILABLE` after about `commandTimeoutMs`. */
async function expectUnavailableInTime(operation: Promise<unknown>): Promise<void> {
  const { outcome, ms } = await timed(operation);
  expect(outcome).toMatchObject({ status: 'rejected', reason: storeUnavailable });
  expect(ms).toBeGreaterThanOrEqual(commandTimeoutMs - 5);
  expect(ms).toBeLessThan(commandTimeoutMs + 1_000);
}

describe('Redis stopped mid-run', () => {
  it('fails closed (or open when configured) while Redis is down, and recovers when it returns', async () => {
    const server = await throwawayRedis();
    const redis = server.connect({
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => 50,
    });
    await eventually(async () => (await redis.ping().catch(() => '')) === 'PONG');
    const closed = redisIdempotencyStore(redis, { prefix: 'outage:' });
    const open = redisIdempotencyStore(redis, { prefix: 'outage:', failOpen: true });
    expect((await closed.begin('before', 'f', 10_000)).status).toBe('new');

    await server.kill();
    await expect(closed.begin('during', 'f', 10_000)).rejects.toMatchObject(storeUnavailable);
    expect(await open.begin('during', 'f', 10_000)).toEqual({ status: 'new' });

    await server.start();
    await eventually(async () => (await redis.ping().catch(() => '')) === 'PONG');
    expect((await closed.begin('after', 'f', 10_000)).status).toBe('new');
    expect((await closed.begin('after', 'f', 10_000)).status).toBe('in_progress');
  }, 20_000);

  it('with ioredis defaults (commands queued offline), answers within commandTimeoutMs and recovers on the same client', async () => {
    const server = await throwawayRedis();
    const redis = server.connect();
    const closed = redisIdempotencyStore(redis, { prefix: 'down:', commandTimeoutMs });
    const open = redisIdempotencyStore(redis, { prefix: 'down:', commandTimeoutMs, failOpen: true });
    const breaker = new RedisCircuitBreaker(redis, { key: 'down:breaker', commandTimeoutMs });
    expect((await closed.begin('before', 'f', 60_000)).status).toBe('new');

    await server.kill();
    await expectUnavailableInTime(closed.begin('during', 'f', 60_000));
    expect((await timed(open.begin('during', 'f', 60_000))).outcome).toEqual({
      status: 'fulfilled',
      value: { status: 'new' },
    });
    await expectUnavailableInTime(firstValueFrom(breaker.acquire()));

    await server.start();
    await eventually(async () => (await redis.ping().catch(() => '')) === 'PONG');
    expect((await closed.begin('after', 'f', 60_000)).status).toBe('new');
    expect((await closed.begin('after', 'f', 60_000)).status).toBe('in_progress');
    (await firstValueFrom(breaker.acquire())).success();
    expect(await breaker.getState()).toBe('closed');
  }, 20_000);
});

describe('Redis paused (SIGSTOP) mid-run', () => {
  it('the idempotency store answers within commandTimeoutMs, fails open except commit, and works again on SIGCONT', async () => {
    const server = await throwawayRedis();
    const redis = server.connect();
    const closed = redisIdempotencyStore(redis, { prefix: 'paused:', commandTimeoutMs });
    const open = redisIdempotencyStore(redis, { prefix: 'paused:', commandTimeoutMs, failOpen: true });
    const held = await closed.begin('held', 'f', 60_000);
    const record = { kind: 'result' as const, result: { content: [] } };

    server.pause();
    await expectUnavailableInTime(closed.begin('late-closed', 'f', 60_000));
    await expectUnavailableInTime(closed.release('held', (held as { token: string }).token));
    await expectUnavailableInTime(open.commit([['INCR', 'paused:effect']]));
    const failingOpen = await timed(
      Promise.all([
        open.begin('late-open', 'f', 60_000),
        open.complete('done', 'f', record, 60_000),
        open.release('held'),
      ]),
    );
    expect(failingOpen.outcome).toEqual({
      status: 'fulfilled',
      value: [{ status: 'new' }, undefined, undefined],
    });
    expect(failingOpen.ms).toBeLessThan(commandTimeoutMs + 1_000);

    server.resume();
    // Redis runs the queued commands late; the keys the late begins took, nobody got: they are let go.
    for (const key of ['late-closed', 'late-open'])
      await eventually(async () => (await closed.begin(key, 'f', 60_000)).status === 'new');
    expect((await closed.begin('held', 'f', 60_000)).status).toBe('new'); // the late release ran
    expect(await closed.begin('done', 'f', 60_000)).toEqual({ status: 'completed', record });
    expect(await redis.get('paused:effect')).toBe('1'); // a commit that timed out may still apply
  }, 20_000);

  it('the breaker answers within commandTimeoutMs, lets go of a probe granted too late, and works again on SIGCONT', async () => {
    const server = await throwawayRedis();
    const redis = server.connect();
    const breaker = new RedisCircuitBreaker(redis, {
      key: 'paused:breaker',
      failureThreshold: 1,
      recoveryTimeoutMs: 50,
      commandTimeoutMs,
    });
    (await firstValueFrom(breaker.acquire())).failure(timeout);
    await eventually(async () => (await breaker.getState()) === 'open');

    server.pause();
    await expectUnavailableInTime(firstValueFrom(breaker.acquire())); // Redis will grant it the probe late
    await expectUnavailableInTime(breaker.getState());

    server.resume();
    await eventually(async () => (await breaker.getState()) === 'half-open');
    await eventually(async () => (await redis.exists('{paused:breaker}:probe')) === 0);
    const probe = await firstValueFrom(breaker.acquire()); // not blocked for probeTimeoutMs
    probe.success();
    await eventually(async () => (await breaker.getState()) === 'closed');
  }, 20_000);
});

describe('failing open while Redis is paused (SIGSTOP)', () => {
  it('the breaker admits calls as if closed within commandTimeoutMs, counts none, then at once; shared again on SIGCONT', async () => {
    const server = await throwawayRedis();
    const redis = server.connect();
    const reported: unknown[] = [];
    const options = { key: 'open:breaker', failureThreshold: 2, recoveryTimeoutMs: 60_000, commandTimeoutMs };
    const breaker = new RedisCircuitBreaker(redis, {
      ...options,
      failOpen: true,
      onStoreError: (error) => reported.push(error),
    });
    const closed = new RedisCircuitBreaker(redis, options);
    (await firstValueFrom(breaker.acquire())).failure(timeout);
    (await firstValueFrom(breaker.acquire())).failure(timeout);
    await eventually(async () => (await breaker.getState()) === 'open');

    server.pause();
    await expectUnavailableInTime(firstValueFrom(closed.acquire())); // without failOpen: refused
    const first = await timed(firstValueFrom(breaker.acquire()));
    expect(first.outcome.status).toBe('fulfilled'); // open in Redis, but Redis does not answer
    expect(first.ms).toBeLessThan(commandTimeoutMs + 1_000);
    const rest = await timed(
      Promise.all(Array.from({ length: 10 }, () => firstValueFrom(breaker.acquire()))),
    );
    expect(rest.ms).toBeLessThan(100); // known down: no waiting on Redis
    for (const permit of (rest.outcome as PromiseFulfilledResult<BreakerPermit[]>).value) permit.success();
    expect(reported.length).toBeGreaterThanOrEqual(1);
    expect(reported[0]).toMatchObject(storeUnavailable);

    server.resume();
    // Redis answers a check: the shared breaker decides again, still open — the successes were not counted
    await eventually(async () =>
      firstValueFrom(breaker.acquire()).then(
        () => false,
        (error: TxError) => error.code === TxErrorCode.CircuitOpen,
      ),
    );
    expect(await redis.hget('{open:breaker}', 'state')).toBe('open');
  }, 20_000);
});

describe('a dead Redis under the default pipeline (retry included)', () => {
  /** A client of a tool server whose pipeline has `parts` on a killed Redis, and how long `counter` takes. */
  async function callWhileRedisIsDead(parts: (redis: Redis) => TxConfig) {
    const server = await throwawayRedis();
    const redis = server.connect();
    await eventually(async () => (await redis.ping().catch(() => '')) === 'PONG');
    const fixture = await connectFixture({ config: parts(redis) });
    onTestFinished(() => fixture.close());
    await server.kill();
    const { outcome, ms } = await timed(fixture.tx.call('counter', { key: 'k' }));
    return { outcome, ms, calls: fixture.effects.get('k') ?? 0 };
  }

  it.each([
    ['a Redis rate limiter', (redis: Redis) => ({ limiter: redisRateLimiter(redis, limiterOptions) })],
    [
      'a Redis circuit breaker',
      (redis: Redis) => ({ breaker: new RedisCircuitBreaker(redis, breakerOptions) }),
    ],
  ])(
    'fails a call through %s within one commandTimeoutMs: the default retry does not retry it',
    async (_part, parts) => {
      const { outcome, ms, calls } = await callWhileRedisIsDead(parts);
      expect(outcome).toMatchObject({ status: 'rejected', reason: { code: TxErrorCode.StoreUnavailable } });
      expect((outcome as PromiseRejectedResult).reason.meta).toMatchObject({ attempts: 0 });
      // retried by default it would take 3 × 200 ms plus ~1 s and ~2 s of backoff
      expect(ms).toBeLessThan(commandTimeoutMs + 600);
      expect(calls).toBe(0);
    },
    20_000,
  );

  it('retries it when the policy names MCP_TX_STORE_UNAVAILABLE', async () => {
    const { outcome, ms } = await callWhileRedisIsDead((redis) => ({
      limiter: redisRateLimiter(redis, limiterOptions),
      retry: { baseDelayMs: 10, jitter: false, retryableErrors: [TxErrorCode.StoreUnavailable] },
    }));
    expect(outcome).toMatchObject({ status: 'rejected', reason: { meta: { attempts: 0 } } });
    expect(ms).toBeGreaterThanOrEqual(3 * commandTimeoutMs - 15);
  }, 20_000);

  it.each([
    [
      'a Redis rate limiter',
      (redis: Redis) => ({ limiter: redisRateLimiter(redis, { ...limiterOptions, ...open }) }),
    ],
    [
      'a Redis circuit breaker',
      (redis: Redis) => ({ breaker: new RedisCircuitBreaker(redis, { ...breakerOptions, ...open }) }),
    ],
  ])(
    'runs the call through %s failing open, within one commandTimeoutMs',
    async (_part, parts) => {
      const { outcome, ms, calls } = await callWhileRedisIsDead(parts);
      expect(outcome.status).toBe('fulfilled');
      expect(ms).toBeLessThan(commandTimeoutMs + 600);
      expect(calls).toBe(1);
    },
    20_000,
  );
});

describe('RedisCircuitBreaker state$ across a Redis restart', () => {
  it('re-reads the state when its connection is back and follows the transitions made after', async () => {
    const server = await throwawayRedis();
    const key = 'restart:breaker';
    const seen: BreakerState[] = [];
    let failed: unknown;
    new RedisCircuitBreaker(server.connect(), { key }).state$.subscribe({
      next: (state) => seen.push(state),
      error: (error) => {
        failed = error;
      },
    });
    let gaveUp: unknown;
    new RedisCircuitBreaker(server.connect({ retryStrategy: () => null }), { key }).state$.subscribe({
      error: (error) => {
        gaveUp = error;
      },
    });
    /** Opens the breaker from a connection of its own, as another process would. */
    const openElsewhere = async () => {
      const other = new RedisCircuitBreaker(server.connect(), { key, failureThreshold: 1 });
      (await firstValueFrom(other.acquire())).failure(timeout);
    };
    await eventually(async () => seen.length === 1);
    await openElsewhere();
    await eventually(async () => seen.length === 2);

    await server.kill(); // no persistence: the restarted Redis has no breaker state, i.e. closed
    await eventually(async () => gaveUp !== undefined);
    expect(gaveUp).toMatchObject(storeUnavailable);
    await server.start();
    await eventually(async () => seen.length === 3);
    await openElsewhere();
    await eventually(async () => seen.length === 4);
    expect(seen).toEqual(['closed', 'open', 'closed', 'open']);
    expect(failed).toBeUndefined();
  }, 20_000);
});

describe('RedisCircuitBreaker on a Redis Cluster (one node holding every slot)', () => {
  it('keeps its state and probe lock in one slot (no CROSSSLOT)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-tx-cluster-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const nodes = join(dir, 'nodes.conf');
    const server = await throwawayRedis('--cluster-enabled', 'yes', '--cluster-config-file', nodes);
    const redis = server.connect();
    await redis.cluster('ADDSLOTSRANGE', 0, 16_383);
    await eventually(async () => (await redis.cluster('INFO')).includes('cluster_state:ok'));
    const breaker = new RedisCircuitBreaker(redis, {
      key: 'cluster:breaker',
      failureThreshold: 1,
      recoveryTimeoutMs: 50,
    });
    (await firstValueFrom(breaker.acquire())).failure(timeout);
    await eventually(async () => (await breaker.getState()) === 'open');
    let probe: BreakerPermit | undefined;
    await eventually(async () => {
      probe = await firstValueFrom(breaker.acquire()).catch((error: TxError) => {
        if (error.code !== TxErrorCode.CircuitOpen) throw error;
        return undefined;
      });
      return probe !== undefined;
    });
    probe?.success();
    await eventually(async () => (await breaker.getState()) === 'closed');
  }, 20_000);
});
