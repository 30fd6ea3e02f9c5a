import type { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BreakerPermit } from '../../../src/breaker/breaker.js';
import type { RedisAdmission } from '../../../src/breaker/redisBreakerScripts.js';
import { RedisCircuitBreaker } from '../../../src/breaker/redisCircuitBreaker.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';

type Answer<T> = T | 'down' | 'stall';

const answer = <T>(next: Answer<T> | undefined, otherwise: T): Promise<T> => {
  if (next === 'stall') return new Promise(() => undefined);
  if (next === 'down') return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
  return Promise.resolve(next ?? otherwise);
};

/**
 * An ioredis client as the breaker sees it (its scripts already defined): the admission script
 * answers the next of `admissions`, the state read the next of `states`, reports `reports`
 * (`'closed'` when they run out); every request is counted.
 */
function fakeRedis(
  script: {
    admissions?: Array<Answer<RedisAdmission>>;
    states?: Array<Answer<string | null>>;
    reports?: Array<Answer<string>>;
  } = {},
) {
  const { admissions = [], states = [], reports = [] } = script;
  const fake = {
    admits: 0,
    reads: 0,
    reported: 0,
    defineCommand() {},
    mcpTxBreakerAdmit: () => {
      fake.admits++;
      return answer(admissions.shift(), ['closed'] as RedisAdmission);
    },
    mcpTxBreakerReport: () => {
      fake.reported++;
      return answer(reports.shift(), 'closed');
    },
    hget: () => {
      fake.reads++;
      return answer(states.shift(), null);
    },
  };
  return fake;
}

const asRedis = (fake: ReturnType<typeof fakeRedis>) => fake as unknown as Redis;
const storeUnavailable = expect.objectContaining({ code: TxErrorCode.StoreUnavailable });
const timeout = new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true });

/** The permit `acquire` gives, or the error it fails with. */
const acquire = (breaker: RedisCircuitBreaker): Promise<BreakerPermit | TxError> =>
  firstValueFrom(breaker.acquire()).catch((error: TxError) => error);

/** Once the breaker has heard the fake's answers (they settle within a few microtasks). */
const answered = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('RedisCircuitBreaker failing open (a fake Redis)', () => {
  it('without failOpen, refuses the call with MCP_TX_STORE_UNAVAILABLE and tells onStoreError', async () => {
    const told = vi.fn();
    const breaker = new RedisCircuitBreaker(asRedis(fakeRedis({ admissions: ['down'] })), {
      key: 'pricing',
      onStoreError: told,
    });
    expect(await acquire(breaker)).toEqual(storeUnavailable);
    expect(told).toHaveBeenCalledExactlyOnceWith(storeUnavailable);
  });

  it('with failOpen, admits calls as if closed while Redis is down, records none of their outcomes, and asks Redis again', async () => {
    const redis = fakeRedis({ admissions: ['down', ['open', 0, 1_000]], states: ['down', 'open'] });
    const told = vi.fn();
    const breaker = new RedisCircuitBreaker(asRedis(redis), {
      key: 'pricing',
      failOpen: true,
      onStoreError: told,
    });

    const first = await acquire(breaker); // Redis fails: admitted, uncounted
    expect(first).not.toBeInstanceOf(TxError);
    (first as BreakerPermit).failure(timeout);
    const second = await acquire(breaker); // known down: admitted without asking Redis to admit it
    (second as BreakerPermit).failure(timeout);
    expect([redis.admits, redis.reads, redis.reported]).toEqual([1, 1, 0]);
    await answered(); // the read failed: still down
    expect(await acquire(breaker)).not.toBeInstanceOf(TxError);
    await answered(); // the next read answers: Redis is back
    expect([redis.admits, redis.reads, redis.reported]).toEqual([1, 2, 0]);
    expect(told.mock.calls.flat()).toEqual([storeUnavailable, storeUnavailable]);

    // back to the shared breaker: it is open (another process opened it)
    expect(await acquire(breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen });
    expect(redis.admits).toBe(2);
  });

  it('with failOpen, admits a call within commandTimeoutMs when Redis stalls', async () => {
    const breaker = new RedisCircuitBreaker(asRedis(fakeRedis({ admissions: ['stall'] })), {
      key: 'pricing',
      failOpen: true,
      commandTimeoutMs: 30,
      onStoreError: () => undefined,
    });
    const started = performance.now();
    expect(await acquire(breaker)).not.toBeInstanceOf(TxError);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('tells onStoreError of an outcome report Redis failed to record', async () => {
    const told = vi.fn();
    const breaker = new RedisCircuitBreaker(asRedis(fakeRedis({ reports: ['down'] })), {
      key: 'pricing',
      onStoreError: told,
    });
    ((await acquire(breaker)) as BreakerPermit).failure(timeout);
    await answered();
    expect(told).toHaveBeenCalledExactlyOnceWith(storeUnavailable);
  });

  it('warns once per outage when failing open without onStoreError', async () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const redis = fakeRedis({ admissions: ['down', 'down'], states: ['down', 'closed'] });
    const breaker = new RedisCircuitBreaker(asRedis(redis), { key: 'pricing', failOpen: true });
    await acquire(breaker); // fails open: warns
    await acquire(breaker); // its read fails: the same outage
    await answered();
    await acquire(breaker); // the read answers: over
    await answered();
    await acquire(breaker); // the admission fails: a new outage, warns again
    const warnings = emitWarning.mock.calls.filter(
      ([, options]) => (options as { code?: string } | undefined)?.code === 'MCP_TX_STORE_FAIL_OPEN',
    );
    expect(warnings).toHaveLength(2);
    expect(String(warnings[0]?.[0])).toMatch(/Circuit breaker store unavailable, failing open/);
  });

  it.each([
    [{ failOpen: 1 }, 'options.failOpen'],
    [{ onStoreError: {} }, 'options.onStoreError'],
  ])('rejects %o, naming %s', (bad, field) => {
    expect(() => new RedisCircuitBreaker(asRedis(fakeRedis()), { key: 'k', ...bad } as never)).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field }),
    );
  });
});
