import fc from 'fast-check';
import { type Subscription, VirtualTimeScheduler } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { TxErrorCode } from '../../../src/core/errors.js';
import { tokenBucket } from '../../../src/limiter/tokenBucket.js';
import { fuzz, optionValue } from '../core/fuzz.js';

/** Float slack for the window bound. */
const EPSILON = 1e-6;

/** Starts an acquire at each virtual time of `times`; records when, and in what order, each was admitted. */
function arrivals(scheduler: VirtualTimeScheduler, bucket: ReturnType<typeof tokenBucket>, times: number[]) {
  const admitted: Array<number | undefined> = times.map(() => undefined);
  const order: number[] = [];
  const subscriptions: Subscription[] = [];
  times.forEach((at, index) => {
    scheduler.schedule(() => {
      subscriptions[index] = bucket.acquire().subscribe(() => {
        admitted[index] = scheduler.now();
        order.push(index);
      });
    }, at);
  });
  return { admitted, order, subscriptions };
}

/** The most starts in any window [starts[i], starts[j]] over what the bucket allows, > 0 when broken. */
function worstExcess(starts: readonly number[], ratePerSecond: number, burst: number): number {
  let worst = Number.NEGATIVE_INFINITY;
  for (let first = 0; first < starts.length; first++) {
    for (let last = first; last < starts.length; last++) {
      const windowSeconds = ((starts[last] as number) - (starts[first] as number)) / 1_000;
      worst = Math.max(worst, last - first + 1 - (burst + ratePerSecond * windowSeconds));
    }
  }
  return worst;
}

describe('tokenBucket', () => {
  it('lets the burst through at once, then one call per 1/rate, in order (marbles)', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ expectObservable }) => {
      const bucket = tokenBucket({ ratePerSecond: 10, burst: 2, scheduler });
      const admitted = { a: expect.objectContaining({ release: expect.any(Function) }) };
      expectObservable(bucket.acquire()).toBe('(a|)', admitted);
      expectObservable(bucket.acquire()).toBe('(a|)', admitted);
      expectObservable(bucket.acquire()).toBe('100ms (a|)', admitted);
      expectObservable(bucket.acquire()).toBe('200ms (a|)', admitted);
    });
  });

  it('refills continuously from the clock, with no timer while nobody waits', () => {
    const scheduler = new VirtualTimeScheduler();
    const bucket = tokenBucket({ ratePerSecond: 10, burst: 3, scheduler });
    for (let index = 0; index < 3; index++) bucket.acquire().subscribe();
    expect(bucket.available).toBe(0);
    expect(scheduler.actions).toHaveLength(0);
    scheduler.schedule(() => expect(bucket.available).toBeCloseTo(2.5), 250);
    scheduler.schedule(() => expect(bucket.available).toBe(3), 10_000);
    scheduler.flush();
  });

  it('tryAcquire takes a token at once, and none while the bucket is empty or a call waits (FIFO kept)', () => {
    const scheduler = new VirtualTimeScheduler();
    const bucket = tokenBucket({ ratePerSecond: 10, burst: 1, scheduler });
    expect(bucket.tryAcquire()).toBeDefined();
    expect(bucket.tryAcquire()).toBeUndefined();
    let admittedAt: number | undefined;
    bucket.acquire().subscribe(() => {
      admittedAt = scheduler.now();
    });
    scheduler.schedule(() => expect(bucket.tryAcquire()).toBeUndefined(), 99);
    scheduler.flush();
    expect(admittedAt).toBe(100);
    expect(bucket.tryAcquire()).toBeUndefined();
    scheduler.schedule(() => expect(bucket.tryAcquire()).toBeDefined(), 100);
    scheduler.flush();
  });

  it('frees a queued place on unsubscribe; the next moves up; no timer is left', () => {
    const scheduler = new VirtualTimeScheduler();
    const bucket = tokenBucket({ ratePerSecond: 1, burst: 1, scheduler });
    const { admitted, subscriptions } = arrivals(scheduler, bucket, [0, 0, 0]);
    scheduler.schedule(() => {
      expect(bucket.queued).toBe(2);
      subscriptions[1]?.unsubscribe();
      expect(bucket.queued).toBe(1);
    }, 500);
    scheduler.flush();
    expect(admitted).toEqual([0, undefined, 1_000]);
    expect(bucket.queued).toBe(0);
    expect(scheduler.actions).toHaveLength(0);
  });

  it('cancels its timer when the last waiting call leaves', () => {
    const scheduler = new VirtualTimeScheduler();
    const bucket = tokenBucket({ ratePerSecond: 1, burst: 1, scheduler });
    bucket.acquire().subscribe();
    const waiting = bucket.acquire().subscribe();
    expect(scheduler.actions).toHaveLength(1);
    waiting.unsubscribe();
    expect(scheduler.actions).toHaveLength(0);
  });

  it('fails calls past maxQueue with MCP_TX_RATE_LIMITED, giving the queue size, while the queued ones still start', () => {
    const scheduler = new VirtualTimeScheduler();
    const bucket = tokenBucket({ ratePerSecond: 10, burst: 1, maxQueue: 2, scheduler });
    const errors: unknown[] = [];
    const admitted: number[] = [];
    for (let index = 0; index < 5; index++) {
      bucket
        .acquire()
        .subscribe({ next: () => admitted.push(scheduler.now()), error: (e) => errors.push(e) });
    }
    scheduler.flush();
    expect(admitted).toEqual([0, 100, 200]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatchObject({
      code: TxErrorCode.RateLimited,
      retryable: false,
      message: expect.stringContaining('2 calls waiting'),
    });
  });

  it('starts at most burst + rate·T calls in any window T, every call, in arrival order, and leaves no timer (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 200, noNaN: true }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 60 }),
        (ratePerSecond, burst, rawTimes) => {
          const times = [...rawTimes].sort((a, b) => a - b);
          const scheduler = new VirtualTimeScheduler();
          const bucket = tokenBucket({ ratePerSecond, burst, scheduler });
          const { admitted, order } = arrivals(scheduler, bucket, times);
          scheduler.flush();
          expect(admitted.every((start) => start !== undefined)).toBe(true);
          expect(order).toEqual(times.map((_, index) => index));
          expect(worstExcess(admitted as number[], ratePerSecond, burst)).toBeLessThanOrEqual(EPSILON);
          expect(bucket.queued).toBe(0);
          expect(scheduler.actions).toHaveLength(0);
        },
      ),
      fuzz(100),
    );
  });

  it.each([
    [{ ratePerSecond: 0, burst: 1 }, 'options.ratePerSecond'],
    [{ ratePerSecond: Infinity, burst: 1 }, 'options.ratePerSecond'],
    [{ ratePerSecond: 1, burst: 0.5 }, 'options.burst'],
    [{ ratePerSecond: 1, burst: 0 }, 'options.burst'],
    [{ ratePerSecond: 1, burst: 1, maxQueue: -1 }, 'options.maxQueue'],
    [{ ratePerSecond: 1, burst: 1, scheduler: {} }, 'options.scheduler'],
    [{ ratePerSecond: 1, burst: 1, rate: 2 }, 'options.rate'],
  ])('rejects %o, naming %s', (options, field) => {
    expect(() => tokenBucket(options as Parameters<typeof tokenBucket>[0])).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field }),
    );
  });

  it('takes any options or refuses them with MCP_TX_VALIDATION naming the field; what it takes admits a first call at once (property)', () => {
    const options = fc.record(
      { ratePerSecond: optionValue, burst: optionValue, maxQueue: optionValue, other: optionValue },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(options, (candidate) => {
        const scheduler = new VirtualTimeScheduler();
        let bucket: ReturnType<typeof tokenBucket>;
        try {
          bucket = tokenBucket({ ...(candidate as object), scheduler } as unknown as Parameters<
            typeof tokenBucket
          >[0]);
        } catch (error) {
          expect(error).toMatchObject({
            code: TxErrorCode.Validation,
            field: expect.stringMatching(/^options/),
          });
          return;
        }
        let admitted = 0;
        bucket.acquire().subscribe(() => admitted++);
        expect(admitted).toBe(1);
        expect(scheduler.actions).toHaveLength(0);
      }),
      fuzz(300),
    );
  });

  it('queues without bound by default', () => {
    const bucket = tokenBucket({ ratePerSecond: 1, burst: 1, scheduler: new VirtualTimeScheduler() });
    for (let index = 0; index < 1_001; index++) bucket.acquire().subscribe();
    expect(bucket.queued).toBe(1_000);
  });
});
