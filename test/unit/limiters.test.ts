import fc from 'fast-check';
import { type Subscription, VirtualTimeScheduler } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { TxErrorCode } from '../../src/index.js';
import { concurrencyLimit } from '../../src/limiter/concurrencyLimit.js';
import type { Limiter } from '../../src/limiter/limiter.js';
import { tokenBucket } from '../../src/limiter/tokenBucket.js';

/** Starts an acquire at virtual time `at`; records when (and whether) it was admitted. */
function arrivals(scheduler: VirtualTimeScheduler, limiter: Limiter, times: number[]) {
  const admitted: Array<number | undefined> = times.map(() => undefined);
  const subscriptions: Subscription[] = [];
  times.forEach((at, index) => {
    scheduler.schedule(() => {
      subscriptions[index] = limiter.acquire().subscribe(() => {
        admitted[index] = scheduler.now();
      });
    }, at);
  });
  return { admitted, subscriptions };
}

describe('tokenBucket', () => {
  it('lets the burst through at once, then one call per 1/rate, in order (marbles)', () => {
    new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(({ expectObservable }) => {
      const bucket = tokenBucket({ ratePerSecond: 10, burst: 2 });
      const admitted = { a: expect.objectContaining({ release: expect.any(Function) }) };
      const acquire = () => bucket.acquire();
      expectObservable(acquire()).toBe('(a|)', admitted);
      expectObservable(acquire()).toBe('(a|)', admitted);
      expectObservable(acquire()).toBe('100ms (a|)', admitted);
      expectObservable(acquire()).toBe('200ms (a|)', admitted);
    });
  });

  it('frees a queued place on unsubscribe; the next moves up; no timer is left', () => {
    const scheduler = new VirtualTimeScheduler();
    const bucket = tokenBucket({ ratePerSecond: 1, burst: 1, scheduler });
    const { admitted, subscriptions } = arrivals(scheduler, bucket, [0, 0, 0]);
    scheduler.schedule(() => subscriptions[1]?.unsubscribe(), 500);
    scheduler.flush();
    expect(admitted).toEqual([0, undefined, 1_000]);
    expect(bucket.queued).toBe(0);
    expect(scheduler.actions).toHaveLength(0);
  });

  it('fails calls past maxQueue with MCP_TX_RATE_LIMITED while the queued ones still start', () => {
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
    expect(errors[0]).toMatchObject({ code: TxErrorCode.RateLimited, retryable: false });
  });

  it('starts at most burst + rate·T calls in any window T, and starts every call in order (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 200, noNaN: true }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 60 }),
        (ratePerSecond, burst, rawTimes) => {
          const times = [...rawTimes].sort((a, b) => a - b);
          const scheduler = new VirtualTimeScheduler();
          const bucket = tokenBucket({ ratePerSecond, burst, scheduler });
          const { admitted } = arrivals(scheduler, bucket, times);
          scheduler.flush();
          const starts = admitted as number[];
          expect(starts.every((start) => start !== undefined)).toBe(true);
          for (let index = 1; index < starts.length; index++) {
            expect(starts[index]).toBeGreaterThanOrEqual(starts[index - 1] as number);
          }
          for (let first = 0; first < starts.length; first++) {
            for (let last = first; last < starts.length; last++) {
              const windowSeconds = ((starts[last] as number) - (starts[first] as number)) / 1_000;
              expect(last - first + 1).toBeLessThanOrEqual(burst + ratePerSecond * windowSeconds + 1e-6);
            }
          }
        },
      ),
    );
  });

  it('rejects bad options, naming the field', () => {
    expect(() => tokenBucket({ ratePerSecond: 0, burst: 1 })).toThrowError(
      expect.objectContaining({ field: 'options.ratePerSecond' }),
    );
    expect(() => tokenBucket({ ratePerSecond: 1, burst: 0.5 })).toThrowError(
      expect.objectContaining({ field: 'options.burst' }),
    );
  });
});

describe('concurrencyLimit', () => {
  it('never has more than maxConcurrent permits out, admits in order, and admits all (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 40 }),
        (maxConcurrent, durations) => {
          const scheduler = new VirtualTimeScheduler();
          const limit = concurrencyLimit({ maxConcurrent });
          const order: number[] = [];
          let peak = 0;
          durations.forEach((duration, index) => {
            limit.acquire().subscribe((permit) => {
              order.push(index);
              peak = Math.max(peak, limit.active);
              scheduler.schedule(() => {
                permit.release();
                permit.release(); // idempotent
              }, duration);
            });
          });
          scheduler.flush();
          expect(peak).toBeLessThanOrEqual(maxConcurrent);
          expect(order).toEqual(durations.map((_, index) => index));
          expect(limit.active).toBe(0);
        },
      ),
    );
  });

  it('fails past maxQueue with MCP_TX_RATE_LIMITED', () => {
    const limit = concurrencyLimit({ maxConcurrent: 1, maxQueue: 0 });
    limit.acquire().subscribe();
    let error: unknown;
    limit.acquire().subscribe({ error: (e) => (error = e) });
    expect(error).toMatchObject({ code: TxErrorCode.RateLimited });
  });
});
