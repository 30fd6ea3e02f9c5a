import { merge, Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { retryWithPolicy } from '../../../operators/retryWithPolicy.js';
import { throttle } from '../../../operators/throttle.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import type { TxResult } from '../../../src/core/types.js';
import { concurrencyLimit } from '../../../src/limiter/concurrencyLimit.js';
import type { Limiter, Permit } from '../../../src/limiter/limiter.js';
import { tokenBucket } from '../../../src/limiter/tokenBucket.js';
import { okResult, virtualCall } from '../../support/virtualCall.js';

type RunHelpers = Parameters<Parameters<TestScheduler['run']>[0]>[0];

/** Runs `body` in virtual time, handing it the TestScheduler to pass to limiters and calls. */
const run = (body: (helpers: RunHelpers, scheduler: TestScheduler) => void) => {
  const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  scheduler.run((helpers) => body(helpers, scheduler));
};

describe('throttle in virtual time', () => {
  it('subscribes each call when the bucket gives it a token', () => {
    run(({ cold, expectObservable, expectSubscriptions }, scheduler) => {
      const bucket = tokenBucket({ ratePerSecond: 10, burst: 2, scheduler });
      const sources = [0, 1, 2, 3].map(() => cold<TxResult>('--(a|)', { a: okResult() }));
      sources.forEach((source, index) => {
        const call = virtualCall(() => source, { scheduler });
        expectObservable(call.pipe(throttle(bucket))).toBe(
          ['--(a|)', '--(a|)', '102ms (a|)', '202ms (a|)'][index] as string,
          {
            a: okResult(),
          },
        );
      });
      expectSubscriptions(sources[2]?.subscriptions ?? []).toBe('100ms ^-!');
    });
  });

  it('holds a concurrency permit until the call ends, then admits the next', () => {
    run(({ cold, expectObservable }, scheduler) => {
      const limit = concurrencyLimit({ maxConcurrent: 1 });
      const call = () => virtualCall(() => cold<TxResult>('----(a|)', { a: okResult() }), { scheduler });
      expectObservable(merge(call().pipe(throttle(limit)), call().pipe(throttle(limit)))).toBe(
        '----a---(a|)',
        {
          a: okResult(),
        },
      );
    });
  });

  it('never subscribes a call that left the queue, and fails with meta past maxQueue', () => {
    run(({ cold, expectObservable, expectSubscriptions }, scheduler) => {
      const bucket = tokenBucket({ ratePerSecond: 1, burst: 1, maxQueue: 1, scheduler });
      const first = cold<TxResult>('-(a|)', { a: okResult() });
      const abandoned = cold<TxResult>('-(a|)', { a: okResult() });
      virtualCall(() => first, { scheduler })
        .pipe(throttle(bucket))
        .subscribe();
      const queued = virtualCall(() => abandoned, { scheduler }).pipe(throttle(bucket));
      expectObservable(queued, '^ 10ms !').toBe('');
      const full = virtualCall(() => first, { scheduler }).pipe(throttle(bucket));
      expectObservable(full).toBe(
        '#',
        undefined,
        expect.objectContaining({
          code: TxErrorCode.RateLimited,
          meta: expect.objectContaining({ status: 'rejected' }),
        }),
      );
      expectSubscriptions(abandoned.subscriptions).toBe([]);
    });
  });

  it('inside a retry, makes every attempt wait for its own token', () => {
    run(({ cold, expectObservable }, scheduler) => {
      const bucket = tokenBucket({ ratePerSecond: 10, burst: 1, scheduler });
      const busy = new TxError(TxErrorCode.ToolError, 'TEMPORARY_FAILURE', { retryable: true });
      const call = virtualCall(
        (n) => (n < 3 ? cold<TxResult>('#', undefined, busy) : cold('(a|)', { a: okResult(3) })),
        {
          scheduler,
        },
      );
      const retried = call.pipe(
        throttle(bucket),
        retryWithPolicy({ baseDelayMs: 10, jitter: false }, { scheduler }),
      );
      // attempt 1 at 0; retry after 10 waits for the token due at 100; retry after 20 more waits until 200
      expectObservable(retried).toBe('200ms (a|)', { a: okResult(3) });
    });
  });

  it('runs on the permit tryAcquire gives without asking acquire(); else, or with no tryAcquire, waits on acquire()', () => {
    run(({ cold, expectObservable }, scheduler) => {
      const released: string[] = [];
      const permit = (name: string): Permit => ({ release: () => released.push(name) });
      const later = cold<Permit>('5ms (p|)', { p: permit('queued') });
      const limiter = (tryAcquire?: () => Permit | undefined): Limiter => ({
        acquire: () => later,
        ...(tryAcquire === undefined ? {} : { tryAcquire }),
      });
      const call = (limiter: Limiter) =>
        virtualCall(() => cold<TxResult>('-(a|)', { a: okResult() }), { scheduler }).pipe(throttle(limiter));
      expectObservable(call(limiter(() => permit('free')))).toBe('-(a|)', { a: okResult() });
      expectObservable(call(limiter(() => undefined))).toBe('------(a|)', { a: okResult() });
      expectObservable(call(limiter())).toBe('------(a|)', { a: okResult() });
      scheduler.flush();
      expect(released).toEqual(['free', 'queued', 'queued']);
    });
  });

  it('rejects what is not a limiter at assembly', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    expect(() => throttle({} as any)).toThrowError(expect.objectContaining({ field: 'limiter' }));
    expect(() => throttle(tokenBucket({ ratePerSecond: 1, burst: 1 }))(new Observable())).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation }),
    );
  });
});
