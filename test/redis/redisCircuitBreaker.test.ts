import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TIMEOUT_MS } from '../../src/config/validators.js';
import { newRequestId } from '../../src/core/ids.js';
import { type BreakerPermit, TxError, TxErrorCode } from '../../src/index.js';
import { type RedisBreakerOptions, RedisCircuitBreaker } from '../../src/redis.js';
import { scriptArgs } from '../support/childScript.js';
import { eventually } from '../support/fixture.js';

const workerScript = fileURLToPath(new URL('./breakerWorker.ts', import.meta.url));

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const connections: Redis[] = [];
const connect = () => {
  const redis = new Redis(url);
  connections.push(redis);
  return redis;
};
afterAll(async () => {
  const keys = await connections[0]?.keys('{mcp-tx-test:breaker:*');
  if (keys?.length) await connections[0]?.del(...keys);
  for (const redis of connections) redis.disconnect();
});

const timeout = new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true });
const take1 = (breaker: RedisCircuitBreaker) =>
  firstValueFrom(breaker.acquire()).catch((error: TxError) => error) as Promise<BreakerPermit | TxError>;

const newKey = () => `mcp-tx-test:breaker:${newRequestId()}`;

/** A breaker on a connection of its own: as one process using the shared `key`. */
function instance(key: string, options: Omit<RedisBreakerOptions, 'key'>) {
  const redis = connect();
  return { redis, breaker: new RedisCircuitBreaker(redis, { key, ...options }) };
}

/** Four breakers on four connections with one key: as four processes sharing one Redis. */
function breakers(options: { recoveryTimeoutMs: number }) {
  const key = newKey();
  return Array.from({ length: 4 }, () => instance(key, { failureThreshold: 3, ...options }).breaker);
}

interface WorkerAnswer {
  readonly status: string;
  readonly code?: string;
}

/** A breakerWorker.ts process: `call` sends it a tool call, `states` holds the transitions it saw. */
class BreakerWorker {
  readonly states: string[] = [];
  private readonly process: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, (answer: WorkerAnswer) => void>();
  private nextId = 0;

  constructor(env: Record<string, string>) {
    this.process = spawn(process.execPath, scriptArgs(workerScript), {
      env: { ...process.env, ...env },
    });
    createInterface({ input: this.process.stdout }).on('line', (line) => {
      const message = JSON.parse(line) as { id?: number; state?: string } & WorkerAnswer;
      if (message.state !== undefined) this.states.push(message.state);
      else this.pending.get(message.id as number)?.(message);
    });
  }

  call(work: { fail?: boolean; ms?: number } = {}): Promise<WorkerAnswer> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.process.stdin.write(`${JSON.stringify({ id, ...work })}\n`);
    });
  }

  /** Ends its input so that it exits; kills it if it has not within 2 s (a failed test leaves no process). */
  stop(): Promise<unknown> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return Promise.resolve();
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    const kill = setTimeout(() => this.process.kill('SIGKILL'), 2_000);
    this.process.stdin.end();
    return exited.finally(() => clearTimeout(kill));
  }
}

describe('RedisCircuitBreaker shared by 4 worker processes', () => {
  it('opened by one process, rejects in the others; half-open, exactly one process probes', async () => {
    const env = { REDIS_URL: url, BREAKER_KEY: `mcp-tx-test:breaker:${newRequestId()}`, RECOVERY_MS: '300' };
    const workers = Array.from({ length: 4 }, () => new BreakerWorker(env));
    const [first, ...others] = workers as [BreakerWorker, ...BreakerWorker[]];
    try {
      await eventually(async () => workers.every((worker) => worker.states.length === 1), 20_000);
      for (let index = 0; index < 3; index++)
        expect(await first.call({ fail: true })).toMatchObject({ status: 'failed' });
      await eventually(async () => others.every((worker) => worker.states.at(-1) === 'open'));
      for (const worker of others) {
        expect(await worker.call()).toMatchObject({ status: 'failed', code: TxErrorCode.CircuitOpen });
      }

      await new Promise((resolve) => setTimeout(resolve, 320));
      const probes = await Promise.all(workers.map((worker) => worker.call({ ms: 50 })));
      expect(probes.filter((answer) => answer.status === 'completed')).toHaveLength(1);
      expect(probes.filter((answer) => answer.code === TxErrorCode.CircuitOpen)).toHaveLength(3);
      await eventually(async () => workers.every((worker) => worker.states.at(-1) === 'closed'));
      for (const worker of workers) expect(await worker.call()).toMatchObject({ status: 'completed' });
      expect(others[0]?.states).toEqual(['closed', 'open', 'half-open', 'closed']);
    } finally {
      await Promise.all(workers.map((worker) => worker.stop()));
    }
  }, 40_000);
});

describe('RedisCircuitBreaker on a real Redis', () => {
  it('opened by one, rejects in the others; after the recovery time exactly one gets the probe', async () => {
    const [first, ...others] = breakers({ recoveryTimeoutMs: 150 });
    if (!first) throw new Error('no breaker');
    const watched: string[] = [];
    const watching = others[0]?.state$.subscribe((state) => watched.push(state));
    await eventually(async () => watched.length === 1);
    for (let index = 0; index < 3; index++) ((await take1(first)) as BreakerPermit).failure(timeout);
    await eventually(async () => (await first.getState()) === 'open');
    for (const other of others) expect(await take1(other)).toMatchObject({ code: TxErrorCode.CircuitOpen });
    await eventually(async () => watched.length === 2);
    expect(watched).toEqual(['closed', 'open']);
    watching?.unsubscribe();

    await new Promise((resolve) => setTimeout(resolve, 160));
    const admissions = await Promise.all([first, ...others].map(take1));
    const probes = admissions.filter((admission) => !(admission instanceof TxError)) as BreakerPermit[];
    expect(probes).toHaveLength(1);
    probes[0]?.success();
    await eventually(async () => (await first.getState()) === 'closed');
    for (const breaker of others) expect(await take1(breaker)).not.toBeInstanceOf(TxError);
  });

  it('re-opens on a failed probe, and does not count errors that are not failures', async () => {
    const [breaker] = breakers({ recoveryTimeoutMs: 50 });
    if (!breaker) throw new Error('no breaker');
    for (let index = 0; index < 5; index++) {
      ((await take1(breaker)) as BreakerPermit).failure(new TxError(TxErrorCode.Validation, 'bad input'));
    }
    expect(await breaker.getState()).toBe('closed');
    for (let index = 0; index < 3; index++) ((await take1(breaker)) as BreakerPermit).failure(timeout);
    await eventually(async () => (await breaker.getState()) === 'open');
    await new Promise((resolve) => setTimeout(resolve, 60));
    ((await take1(breaker)) as BreakerPermit).failure(timeout);
    await eventually(async () => (await breaker.getState()) === 'open');
    expect(await take1(breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen });
  });
});

/** The permit `breaker` gets once the recovery time has passed (asking every 20 ms). */
async function admittedOnceRecovered(breaker: RedisCircuitBreaker): Promise<BreakerPermit> {
  let admission: BreakerPermit | TxError | undefined;
  await eventually(async () => {
    admission = await take1(breaker);
    return !(admission instanceof TxError);
  });
  return admission as BreakerPermit;
}

describe('RedisCircuitBreaker probe fencing: a probe that outlasts probeTimeoutMs is stale', () => {
  type Report = (permit: BreakerPermit) => void;
  const reports: Record<'success' | 'failure' | 'release', Report> = {
    success: (permit) => permit.success(),
    failure: (permit) => permit.failure(timeout),
    release: (permit) => permit.release(),
  };

  /**
   * Opens a fresh shared breaker; instance `stale` (50 ms lock) takes the probe and outlasts its lock
   * (on Redis's clock); then instance `current` (10 s lock) takes the probe. `third` looks on.
   */
  async function probeTakenOver() {
    const key = newKey();
    const lockKey = `{${key}}:probe`;
    const options = { failureThreshold: 1, recoveryTimeoutMs: 50 };
    const stale = instance(key, { ...options, probeTimeoutMs: 50 });
    const current = instance(key, { ...options, probeTimeoutMs: 10_000 });
    const third = instance(key, options);
    ((await take1(stale.breaker)) as BreakerPermit).failure(timeout);
    const stalePermit = await admittedOnceRecovered(stale.breaker);
    expect(await third.breaker.getState()).toBe('half-open');
    expect(await take1(third.breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen });
    await eventually(async () => (await third.redis.exists(lockKey)) === 0);
    const currentPermit = await take1(current.breaker);
    expect(currentPermit).not.toBeInstanceOf(TxError);
    return {
      stale: { ...stale, permit: stalePermit },
      current: { ...current, permit: currentPermit as BreakerPermit },
      third,
      lockKey,
    };
  }

  it.each([
    ['failure', 'success', 'closed'],
    ['success', 'failure', 'open'],
    ['release', 'success', 'closed'],
  ] as const)(
    "the stale probe's late %s changes nothing; the current probe's %s decides",
    async (staleOutcome, currentOutcome, decided) => {
      const { stale, current, third, lockKey } = await probeTakenOver();
      const currentLock = await third.redis.get(lockKey);
      expect(currentLock).toEqual(expect.any(String));

      reports[staleOutcome](stale.permit);
      await stale.redis.ping(); // one connection answers in order: the stale report has run
      expect(await third.breaker.getState()).toBe('half-open');
      expect(await third.redis.get(lockKey)).toBe(currentLock);
      expect(await take1(third.breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen });

      reports[currentOutcome](current.permit);
      await current.redis.ping();
      expect(await third.breaker.getState()).toBe(decided);
      expect(await third.redis.exists(lockKey)).toBe(0);
    },
  );

  it('a probe whose lock expired with nobody taking it is ignored; the next caller probes', async () => {
    const { current: slow, third: next, lockKey } = await probeTakenOver();
    await slow.redis.pexpire(lockKey, 1);
    await eventually(async () => (await next.redis.exists(lockKey)) === 0);
    slow.permit.failure(timeout);
    await slow.redis.ping();
    expect(await next.breaker.getState()).toBe('half-open');
    const probe = await take1(next.breaker);
    expect(probe).not.toBeInstanceOf(TxError);
    (probe as BreakerPermit).success();
    await next.redis.ping();
    expect(await next.breaker.getState()).toBe('closed');
  });
});

describe('RedisCircuitBreaker options', () => {
  it.each(['recoveryTimeoutMs', 'probeTimeoutMs', 'commandTimeoutMs'])(
    '%s is a whole number from 1 to MAX_TIMEOUT_MS',
    (field) => {
      const redis = connect();
      const options = (ms: number) => ({ key: newKey(), [field]: ms });
      expect(() => new RedisCircuitBreaker(redis, options(MAX_TIMEOUT_MS + 1))).toThrow(
        expect.objectContaining({
          code: TxErrorCode.Validation,
          message: `Invalid options.${field}: must be at most ${MAX_TIMEOUT_MS}`,
        }),
      );
      expect(() => new RedisCircuitBreaker(redis, options(MAX_TIMEOUT_MS))).not.toThrow();
      expect(() => new RedisCircuitBreaker(redis, options(0))).toThrow(
        `Invalid options.${field}: must be greater than 0`,
      );
      expect(() => new RedisCircuitBreaker(redis, options(1.5))).toThrow(
        `Invalid options.${field}: must be a whole number of milliseconds`,
      );
    },
  );
});
