import { firstValueFrom, map, NEVER, type Observable, of, switchMap, timer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { circuitBreak } from '../../../operators/circuitBreak.js';
import { retryWithPolicy } from '../../../operators/retryWithPolicy.js';
import { type Breaker, type BreakerPermit, CircuitBreaker } from '../../../src/breaker/circuitBreaker.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import type { TxResult } from '../../../src/core/types.js';
import { okResult, virtualCall } from '../../support/virtualCall.js';

type RunHelpers = Parameters<Parameters<TestScheduler['run']>[0]>[0];

/** Runs `body` in virtual time, handing it the TestScheduler to pass to breakers and calls. */
const run = (body: (helpers: RunHelpers, scheduler: TestScheduler) => void) => {
  const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  scheduler.run((helpers) => body(helpers, scheduler));
};

const timeout = () => new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true, ambiguous: true });
const circuitOpen = (retryAfterMs: number) =>
  expect.objectContaining({
    code: TxErrorCode.CircuitOpen,
    retryAfterMs,
    meta: expect.objectContaining({ status: 'rejected', attempts: 0 }),
  });

/** A breaker that admits every call (after `admitAfterMs`, if given) and logs what the operator reports. */
function recordingBreaker(scheduler: TestScheduler, admitAfterMs?: number) {
  const reports: string[] = [];
  const permit: BreakerPermit = {
    success: () => reports.push('success'),
    failure: (error) => reports.push(`failure ${(error as TxError).code}`),
    release: () => reports.push('release'),
  };
  const breaker: Breaker = {
    acquire: () =>
      admitAfterMs === undefined ? of(permit) : timer(admitAfterMs, scheduler).pipe(map(() => permit)),
  };
  return { breaker, reports };
}

describe('circuitBreak in virtual time', () => {
  it('counts each call: trips at the threshold, then refuses without subscribing the source', () => {
    run(({ cold, expectObservable, expectSubscriptions }, scheduler) => {
      const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeoutMs: 1_000, scheduler });
      const failing = cold<TxResult>('-#', undefined, timeout());
      const call = (source: Observable<TxResult>) =>
        virtualCall(() => source, { scheduler }).pipe(circuitBreak(breaker));
      const timedOut = expect.objectContaining({ code: TxErrorCode.Timeout });
      expectObservable(call(failing)).toBe('-#', undefined, timedOut);
      expectObservable(call(failing)).toBe('-#', undefined, timedOut);
      const refused = cold<TxResult>('-(a|)', { a: okResult() });
      expectObservable(cold('--x').pipe(switchMap(() => call(refused)))).toBe(
        '--#',
        undefined,
        circuitOpen(999),
      );
      expectSubscriptions(refused.subscriptions).toBe([]);
    });
  });

  it('lets a probe through after the recovery time; its result closes the breaker', () => {
    run(({ cold, expectObservable }, scheduler) => {
      const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 100, scheduler });
      const call = (source: Observable<TxResult>) =>
        virtualCall(() => source, { scheduler }).pipe(circuitBreak(breaker));
      call(cold('-#', undefined, timeout())).subscribe({ error: () => undefined });
      cold('110ms p').subscribe(() => call(cold('10ms (a|)', { a: okResult() })).subscribe());
      expectObservable(breaker.state$).toBe('co 99ms h 18ms c', { c: 'closed', o: 'open', h: 'half-open' });
    });
  });

  it('reports success at the result, so a consumer leaving right after it does not count as a cancel', async () => {
    const scheduler = new TestScheduler(() => undefined);
    const { breaker, reports } = recordingBreaker(scheduler);
    await firstValueFrom(virtualCall(() => of(okResult()), { scheduler }).pipe(circuitBreak(breaker)));
    expect(reports).toEqual(['success']);
  });

  it('reports exactly once: success, failure, or release when unsubscribed before the outcome', () => {
    const logs: string[][] = [];
    run(({ cold }, scheduler) => {
      const sources = [
        cold<TxResult>('-(a|)', { a: okResult() }),
        cold<TxResult>('-#', undefined, timeout()),
        cold<TxResult>('-----(a|)', { a: okResult() }),
      ];
      const subscriptions = sources.map((source) => {
        const { breaker, reports } = recordingBreaker(scheduler);
        logs.push(reports);
        return virtualCall(() => source, { scheduler })
          .pipe(circuitBreak(breaker))
          .subscribe({ error: () => undefined });
      });
      cold('--x').subscribe(() => subscriptions[2]?.unsubscribe());
    });
    expect(logs).toEqual([['success'], [`failure ${TxErrorCode.Timeout}`], ['release']]);
  });

  it('frees the half-open probe slot when the probe is unsubscribed, without counting it', () => {
    run(({ cold, expectObservable, expectSubscriptions }, scheduler) => {
      const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 10, scheduler });
      breaker.acquire().subscribe((permit) => permit.failure(timeout()));
      const slow = cold<TxResult>('50ms (a|)', { a: okResult() });
      const probe = () => virtualCall(() => slow, { scheduler }).pipe(circuitBreak(breaker));
      cold('10ms p').subscribe(() => {
        const subscription = probe().subscribe();
        cold('5ms x').subscribe(() => subscription.unsubscribe());
      });
      cold('20ms p').subscribe(() => probe().subscribe());
      expectSubscriptions(slow.subscriptions).toBe(['10ms ^ 4ms !', '20ms ^ 49ms !']);
      expectObservable(breaker.state$).toBe('o 9ms h 59ms c', { c: 'closed', o: 'open', h: 'half-open' });
    });
  });

  it('waits for an asynchronous admission before subscribing; leaving while waiting reports nothing', () => {
    let reported: string[] = [];
    run(({ cold, expectObservable, expectSubscriptions }, scheduler) => {
      const { breaker, reports } = recordingBreaker(scheduler, 5);
      reported = reports;
      const source = cold<TxResult>('-(a|)', { a: okResult() });
      const call = () => virtualCall(() => source, { scheduler }).pipe(circuitBreak(breaker));
      expectObservable(call()).toBe('------(a|)', { a: okResult() });
      expectObservable(call(), '^ 3ms !').toBe('');
      expectSubscriptions(source.subscriptions).toBe(['5ms ^!']);
    });
    expect(reported).toEqual(['success']);
  });

  it('runs on the permit tryAcquire gives without asking acquire(), and reports on it once; else waits on acquire()', () => {
    const logs: string[][] = [];
    run(({ cold, expectObservable }, scheduler) => {
      const waiting = recordingBreaker(scheduler, 5);
      const immediate = recordingBreaker(scheduler);
      logs.push(immediate.reports, waiting.reports);
      let free: BreakerPermit | undefined;
      immediate.breaker.acquire().subscribe((permit) => {
        free = permit;
      });
      const eager = (tryAcquire: () => BreakerPermit | undefined): Breaker => ({
        ...waiting.breaker,
        tryAcquire,
      });
      const call = (gate: Breaker) =>
        virtualCall(() => cold<TxResult>('-(a|)', { a: okResult() }), { scheduler }).pipe(circuitBreak(gate));
      expectObservable(call(eager(() => free))).toBe('-(a|)', { a: okResult() });
      expectObservable(call(eager(() => undefined))).toBe('------(a|)', { a: okResult() });
    });
    expect(logs).toEqual([['success'], ['success']]);
  });

  it('does not count errors the breaker does not count (a validation error passes through)', () => {
    run(({ cold, expectObservable }, scheduler) => {
      const breaker = new CircuitBreaker({ failureThreshold: 1, scheduler });
      const invalid = new TxError(TxErrorCode.Validation, 'Invalid args.q: must be a string');
      const call = virtualCall(() => cold<TxResult>('#', undefined, invalid), { scheduler });
      expectObservable(call.pipe(circuitBreak(breaker))).toBe('#', undefined, invalid);
      expectObservable(breaker.state$).toBe('c', { c: 'closed' });
    });
  });

  it('inside a retry, counts every attempt and stops retrying once the circuit opens', () => {
    const attempts: number[] = [];
    run(({ cold, expectObservable }, scheduler) => {
      const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeoutMs: 1_000, scheduler });
      const busy = new TxError(TxErrorCode.ToolError, 'TEMPORARY_FAILURE', { retryable: true });
      const call = virtualCall(
        (n) => {
          attempts.push(n);
          return cold<TxResult>('#', undefined, busy);
        },
        { scheduler },
      );
      const retried = call.pipe(
        circuitBreak(breaker),
        retryWithPolicy({ maxAttempts: 5, baseDelayMs: 10, jitter: false }, { scheduler }),
      );
      // attempts at 0 and 10 fail and open the breaker; the try at 30 is refused, and that is not retried
      expectObservable(retried).toBe(
        '30ms #',
        undefined,
        expect.objectContaining({ code: TxErrorCode.CircuitOpen, retryAfterMs: 980 }),
      );
    });
    expect(attempts).toEqual([1, 2]);
  });

  it('rejects what is not a breaker, and a source that is not a TxCall, at assembly', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    expect(() => circuitBreak({} as any)).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'breaker' }),
    );
    // biome-ignore lint/suspicious/noExplicitAny: as above
    expect(() => circuitBreak(null as any)).toThrowError(expect.objectContaining({ field: 'breaker' }));
    expect(() => circuitBreak(new CircuitBreaker())(NEVER)).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'circuitBreak source' }),
    );
  });
});
