import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { firstValueFrom, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import { redisRateLimiter } from '../../../src/limiter/redisRateLimiter.js';
import { fuzz, optionValue } from '../core/fuzz.js';

/**
 * An ioredis client as the limiter sees it (its GCRA command already defined), answering each
 * request with the next of `answers`: a number of ms to wait, `'down'` (the request fails), or
 * `'stall'` (it never answers). `requests` counts the requests.
 */
function fakeRedis(answers: Array<number | 'down' | 'stall'>) {
  const fake = {
    requests: 0,
    inFlight: 0,
    mostInFlight: 0,
    defineCommand() {},
    mcpTxGcra(): Promise<number> {
      fake.requests++;
      const answer = answers.shift() ?? 0;
      if (answer === 'stall') return new Promise(() => undefined);
      fake.inFlight++;
      fake.mostInFlight = Math.max(fake.mostInFlight, fake.inFlight);
      const settle = () => {
        fake.inFlight--;
      };
      return answer === 'down'
        ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379')).finally(settle)
        : Promise.resolve(answer).finally(settle);
    },
  };
  return fake;
}

const asRedis = (fake: ReturnType<typeof fakeRedis>) => fake as unknown as Redis;

/** Once the fake's requests have settled and the limiter has heard their answers. */
async function settled(fake: ReturnType<typeof fakeRedis>): Promise<void> {
  await vi.waitFor(() => expect(fake.inFlight).toBe(0));
  await new Promise((resolve) => setImmediate(resolve));
}
const options = { key: 'search-api', ratePerSecond: 10, burst: 1 };
const storeUnavailable = expect.objectContaining({ code: TxErrorCode.StoreUnavailable });
/** A hook that takes the reports, so that failing open does not warn on the test's output. */
const onStoreError = () => undefined;

/** Subscribes `calls` acquires at once; each settles with 'granted' or the error's code. */
function acquireAll(limiter: ReturnType<typeof redisRateLimiter>, calls: number) {
  return Promise.all(
    Array.from({ length: calls }, () =>
      firstValueFrom(limiter.acquire()).then(
        () => 'granted',
        (error: TxError) => error.code,
      ),
    ),
  );
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('redisRateLimiter failing open (a fake Redis)', () => {
  it('without failOpen, fails every waiting call with MCP_TX_STORE_UNAVAILABLE, and tells onStoreError', async () => {
    const told = vi.fn();
    const limiter = redisRateLimiter(asRedis(fakeRedis(['down'])), { ...options, onStoreError: told });
    expect(await acquireAll(limiter, 3)).toEqual(Array(3).fill(TxErrorCode.StoreUnavailable));
    expect(told).toHaveBeenCalledExactlyOnceWith(storeUnavailable);
  });

  it('with failOpen, grants every waiting call when Redis fails, then grants at once while it stays down', async () => {
    const redis = fakeRedis(['down', 'down', 'down']);
    const told = vi.fn();
    const limiter = redisRateLimiter(asRedis(redis), { ...options, failOpen: true, onStoreError: told });
    expect(await acquireAll(limiter, 3)).toEqual(['granted', 'granted', 'granted']);
    expect(redis.requests).toBe(1);

    // down: granted synchronously, while one request at a time asks Redis whether it is back
    const granted: string[] = [];
    for (let call = 0; call < 5; call++) limiter.acquire().subscribe(() => granted.push('granted'));
    expect(granted).toHaveLength(5);
    expect(redis.requests).toBe(2);
    await vi.waitFor(() => expect(redis.inFlight).toBe(0));
    expect(redis.mostInFlight).toBe(1);
    expect(told.mock.calls.flat()).toEqual([storeUnavailable, storeUnavailable]);
  });

  it('with failOpen, throttles again once Redis answers', async () => {
    const scheduler = new VirtualTimeScheduler();
    const redis = fakeRedis(['down', 0, 100, 0]);
    const limiter = redisRateLimiter(asRedis(redis), { ...options, failOpen: true, onStoreError, scheduler });
    expect(await acquireAll(limiter, 1)).toEqual(['granted']); // Redis down: open
    expect(await acquireAll(limiter, 1)).toEqual(['granted']); // its check answers 0: back
    await settled(redis);
    let admitted = false;
    limiter.acquire().subscribe(() => {
      admitted = true;
    });
    await vi.waitFor(() => expect(scheduler.actions).toHaveLength(1)); // Redis says: wait 100 ms
    expect(admitted).toBe(false);
    scheduler.flush();
    await vi.waitFor(() => expect(admitted).toBe(true));
  });

  it('with failOpen, grants the calls waiting on a Redis that stalls within commandTimeoutMs', async () => {
    const redis = fakeRedis(['stall']);
    const limiter = redisRateLimiter(asRedis(redis), {
      ...options,
      failOpen: true,
      onStoreError,
      commandTimeoutMs: 30,
    });
    const started = performance.now();
    expect(await acquireAll(limiter, 2)).toEqual(['granted', 'granted']);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('warns once per outage when failing open without onStoreError', async () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const redis = fakeRedis(['down', 'down', 0, 'down']);
    const limiter = redisRateLimiter(asRedis(redis), { ...options, failOpen: true });
    await acquireAll(limiter, 1); // fails open: warns
    await acquireAll(limiter, 1); // its check fails: the same outage
    await settled(redis);
    await acquireAll(limiter, 1); // the check answers: the outage is over
    await settled(redis);
    await acquireAll(limiter, 1); // a new outage: warns again
    expect(redis.requests).toBe(4);
    const warnings = emitWarning.mock.calls.filter(([, options]) =>
      hasCode(options, 'MCP_TX_STORE_FAIL_OPEN'),
    );
    expect(warnings).toHaveLength(2);
    expect(String(warnings[0]?.[0])).toMatch(
      /Rate limiter unavailable, failing open: calls go on unthrottled/,
    );
  });

  it('ignores what a throwing onStoreError throws', async () => {
    const throwing = () => {
      throw new Error('the logger is down too');
    };
    const open = redisRateLimiter(asRedis(fakeRedis(['down'])), {
      ...options,
      failOpen: true,
      onStoreError: throwing,
    });
    expect(await acquireAll(open, 2)).toEqual(['granted', 'granted']);
    const closed = redisRateLimiter(asRedis(fakeRedis(['down'])), { ...options, onStoreError: throwing });
    expect(await acquireAll(closed, 1)).toEqual([TxErrorCode.StoreUnavailable]);
  });

  it.each([
    [{ failOpen: 'yes' }, 'options.failOpen'],
    [{ onStoreError: 'log' }, 'options.onStoreError'],
  ])('rejects %o, naming %s', (bad, field) => {
    expect(() => redisRateLimiter(asRedis(fakeRedis([])), { ...options, ...bad } as never)).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field }),
    );
  });

  it('takes any options object or refuses it with MCP_TX_VALIDATION naming the field (property)', () => {
    const value = optionValue;
    const fields = fc.record(
      {
        key: fc.oneof(fc.string({ maxLength: 6 }), value),
        ratePerSecond: value,
        burst: value,
        maxQueue: value,
        commandTimeoutMs: value,
        failOpen: value,
        onStoreError: value,
        extra: value,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fields, (candidate) => {
        try {
          redisRateLimiter(asRedis(fakeRedis([])), candidate as never);
        } catch (error) {
          expect(error).toBeInstanceOf(TxError);
          expect(error).toMatchObject({
            code: TxErrorCode.Validation,
            field: expect.stringMatching(/^options/),
          });
        }
      }),
      fuzz(200),
    );
  });
});

function hasCode(options: unknown, code: string): boolean {
  return typeof options === 'object' && options !== null && (options as { code?: unknown }).code === code;
}
