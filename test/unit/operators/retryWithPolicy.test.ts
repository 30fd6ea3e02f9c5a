import fc from 'fast-check';
import {
  asyncScheduler,
  type Observable,
  of,
  switchMap,
  throwError,
  timer,
  VirtualTimeScheduler,
} from 'rxjs';
import { type RunHelpers, TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { circuitBreak } from '../../../operators/circuitBreak.js';
import { retryWithPolicy } from '../../../operators/retryWithPolicy.js';
import { throttle } from '../../../operators/throttle.js';
import { CircuitBreaker } from '../../../src/breaker/circuitBreaker.js';
import type { RetryEvent } from '../../../src/call/call.js';
import {
  DEFAULT_RETRYABLE_ERRORS,
  mergeRetry,
  type PartialRetryPolicy,
  type RetryPolicy,
  retryDelay,
} from '../../../src/config/retryPolicy.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import { storeUnavailable } from '../../../src/core/storeDeadline.js';
import type { TxResult } from '../../../src/core/types.js';
import type { Limiter } from '../../../src/limiter/limiter.js';
import { tokenBucket } from '../../../src/limiter/tokenBucket.js';
import { okResult, virtualCall } from '../../support/virtualCall.js';
import { fuzz, optionValue } from '../core/fuzz.js';

const testScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const flat = { baseDelayMs: 1_000, multiplier: 2, maxDelayMs: 30_000, jitter: false as const };
const transient = () => new TxError(TxErrorCode.ToolError, 'TEMPORARY_FAILURE: busy', { retryable: true });
const timedOut = () => new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true, ambiguous: true });

const failedWith = (code: string, attempts: number) =>
  expect.objectContaining({ code, meta: expect.objectContaining({ attempts }) });

// Inside `run` the async scheduler is virtual: the operator's default and the calls' clocks follow it.
describe('retryWithPolicy in virtual time', () => {
  it('resubscribes after base × multiplier^(n-1) and emits the success', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const outcomes: Array<Observable<TxResult>> = [
        cold<TxResult>('-#', undefined, transient()),
        cold<TxResult>('-#', undefined, transient()),
        cold('-(a|)', { a: okResult(3) }),
      ];
      const call = virtualCall((n) => outcomes[n - 1] as Observable<TxResult>, { scheduler: asyncScheduler });
      const retried = call.pipe(retryWithPolicy({ ...flat, maxAttempts: 3 }));
      // fail at 1, wait 1000, fail at 1002, wait 2000, succeed at 3003
      expectObservable(retried).toBe('3003ms (a|)', { a: okResult(3) });
    });
  });

  it('gives up after maxAttempts with the last error', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const error = transient();
      const call = virtualCall(() => cold<TxResult>('-#', undefined, error), { scheduler: asyncScheduler });
      expectObservable(call.pipe(retryWithPolicy({ ...flat, maxAttempts: 2 }))).toBe(
        '1002ms #',
        undefined,
        failedWith(TxErrorCode.ToolError, 2),
      );
    });
  });

  it('passes a non-retryable error through at once', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const error = new TxError(TxErrorCode.ToolError, 'card declined');
      const call = virtualCall(() => cold<TxResult>('-#', undefined, error), { scheduler: asyncScheduler });
      expectObservable(call.pipe(retryWithPolicy(flat))).toBe(
        '-#',
        undefined,
        expect.objectContaining({ message: 'card declined', meta: expect.objectContaining({ attempts: 1 }) }),
      );
    });
  });

  it('retries codes listed in retryableErrors, and lets retryOn decide alone', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const protocol = new TxError(TxErrorCode.ProtocolError, 'bad gateway');
      const byCode = virtualCall(
        (n) => (n < 2 ? cold<TxResult>('-#', undefined, protocol) : cold('-(a|)', { a: okResult(2) })),
        {
          scheduler: asyncScheduler,
        },
      );
      const policy = { ...flat, retryableErrors: [TxErrorCode.ProtocolError] };
      expectObservable(byCode.pipe(retryWithPolicy(policy))).toBe('1002ms (a|)', { a: okResult(2) });
      const never = virtualCall(() => cold<TxResult>('-#', undefined, transient()), {
        scheduler: asyncScheduler,
      });
      expectObservable(never.pipe(retryWithPolicy({ ...flat, retryOn: () => false }))).toBe(
        '-#',
        undefined,
        failedWith(TxErrorCode.ToolError, 1),
      );
    });
  });

  it('lets a retry-after hint win over the computed delay', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const hinted = new TxError(TxErrorCode.InProgress, 'busy', { retryable: true, retryAfterMs: 50 });
      const call = virtualCall(
        (n) => (n < 2 ? cold<TxResult>('-#', undefined, hinted) : cold('-(a|)', { a: okResult(2) })),
        {
          scheduler: asyncScheduler,
        },
      );
      expectObservable(call.pipe(retryWithPolicy(flat))).toBe('52ms (a|)', { a: okResult(2) });
    });
  });

  it('does not start a retry past the deadline, and cuts an attempt still running at it', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const failing = virtualCall(() => cold<TxResult>('-#', undefined, transient()), {
        scheduler: asyncScheduler,
      });
      const gaveUp = failing.pipe(retryWithPolicy({ ...flat, maxAttempts: 5, deadlineMs: 2_500 }));
      // the second retry would start at 3002: give up when attempt 2 fails at 1002
      expectObservable(gaveUp).toBe('1002ms #', undefined, expect.objectContaining({ retryable: false }));

      const hanging = virtualCall(() => cold<TxResult>('-'), { scheduler: asyncScheduler });
      const cut = hanging.pipe(retryWithPolicy({ ...flat, deadlineMs: 500 }));
      expectObservable(cut).toBe(
        '500ms #',
        undefined,
        expect.objectContaining({
          code: TxErrorCode.Timeout,
          retryable: false,
          message: expect.stringContaining('deadline of tool passed'),
          meta: expect.objectContaining({ attempts: 1, status: 'timeout' }),
        }),
      );
    });
  });

  it('retries an ambiguous failure when the call has a key and the server speaks MCP-Tx, or the policy opts in', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const outcome = (n: number) =>
        n < 2 ? cold<TxResult>('-#', undefined, timedOut()) : cold('-(a|)', { a: okResult(2) });
      const keyed = virtualCall(outcome, { scheduler: asyncScheduler, request: { idempotencyKey: 'k' } });
      expectObservable(keyed.pipe(retryWithPolicy(flat))).toBe('1002ms (a|)', { a: okResult(2) });
      const optedIn = virtualCall(outcome, { scheduler: asyncScheduler, serverSupportsTx: false });
      expectObservable(optedIn.pipe(retryWithPolicy({ ...flat, retryAmbiguous: true }))).toBe('1002ms (a|)', {
        a: okResult(2),
      });
    });
  });

  /** A call whose every attempt fails with `failure` 1 ms in; `onAttempt` hears each attempt's number. */
  const failingCall = (cold: RunHelpers['cold'], failure: unknown, onAttempt: (attempt: number) => void) =>
    virtualCall(
      (n) => {
        onAttempt(n);
        return cold<TxResult>('-#', undefined, failure);
      },
      { scheduler: asyncScheduler },
    );

  it('counts only the attempts sent: a try the breaker refuses is not one, and keeps the last failure as cause', () => {
    const failure = transient();
    let outcome: unknown;
    let sent = 0;
    let endedAt = -1;
    testScheduler().run(({ cold }) => {
      const call = failingCall(cold, failure, (n) => {
        sent = n;
      });
      const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 60_000 });
      call.pipe(circuitBreak(breaker), retryWithPolicy(flat)).subscribe({
        error: (error) => {
          outcome = error;
          endedAt = asyncScheduler.now();
        },
      });
    });
    // attempt 1 fails at 1 and opens the breaker; the retry at 1001 is refused
    expect(endedAt).toBe(1_001);
    expect(sent).toBe(1);
    expect(outcome).toMatchObject({
      code: TxErrorCode.CircuitOpen,
      meta: { attempts: 1, status: 'rejected' },
    });
    expect((outcome as TxError).cause).toBe(failure);
  });

  it('spends a try on each refusal retryOn lets it retry, still counting only the attempts sent', () => {
    const failure = transient();
    let outcome: unknown;
    let sent = 0;
    testScheduler().run(({ cold }) => {
      const call = failingCall(cold, failure, (n) => {
        sent = n;
      });
      const limiter = tokenBucket({ ratePerSecond: 1, burst: 1, maxQueue: 0 });
      const policy = { ...flat, baseDelayMs: 100, maxAttempts: 3, retryOn: () => true };
      // sent at 0 (fails at 1), refused at 101 and at 301: no token before 1000
      call
        .pipe(throttle(limiter), retryWithPolicy(policy))
        .subscribe({ error: (error) => (outcome = error) });
    });
    expect(sent).toBe(1);
    expect(outcome).toMatchObject({ code: TxErrorCode.RateLimited, meta: { attempts: 1 } });
    expect((outcome as TxError).cause).toBe(failure);
  });

  /** A limiter whose store stalls: every acquire fails with `MCP_TX_STORE_UNAVAILABLE` after 2 000 ms. */
  const stalledStoreLimiter = (): Limiter => ({
    acquire: () =>
      timer(2_000).pipe(
        switchMap(() => throwError(() => storeUnavailable('Rate limiter', new Error('did not answer')))),
      ),
  });

  it.each([
    ['the default policy', {}, 2_000, 0],
    ['a policy whose retryableErrors do not name it', { retryableErrors: ['OVERLOADED'] }, 2_000, 0],
    [
      'a policy that names MCP_TX_STORE_UNAVAILABLE',
      { retryableErrors: [...DEFAULT_RETRYABLE_ERRORS, TxErrorCode.StoreUnavailable] },
      2_000 + 1_000 + 2_000 + 2_000 + 2_000,
      2,
    ],
    ['a retryOn that accepts it', { retryOn: () => true }, 2_000 + 1_000 + 2_000 + 2_000 + 2_000, 2],
  ])(
    'fails a call on a store outage of this process at once under %s, else retries it',
    (_policy, policy, endsAt, retries) => {
      let outcome: unknown;
      let endedAt = -1;
      let retried = 0;
      testScheduler().run(({ cold }) => {
        const call = failingCall(cold, transient(), () => undefined);
        call.state.onRetry(() => retried++);
        call.pipe(throttle(stalledStoreLimiter()), retryWithPolicy(policy, { random: () => 0.5 })).subscribe({
          error: (error) => {
            outcome = error;
            endedAt = asyncScheduler.now();
          },
        });
      });
      expect(outcome).toMatchObject({
        code: TxErrorCode.StoreUnavailable,
        meta: { attempts: 0, ack: false, status: 'failed' },
      });
      expect([endedAt, retried]).toEqual([endsAt, retries]);
    },
  );

  it('retries the MCP_TX_STORE_UNAVAILABLE a server reports (its own store: a later try may get through)', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const { meta } = okResult(1);
      const reported = new TxError(TxErrorCode.StoreUnavailable, 'Idempotency store unavailable', {
        retryable: true, // as classifyToolError reads a server's error_code
        meta: { ...meta, processed: false, status: 'failed', errorCode: TxErrorCode.StoreUnavailable },
      });
      const call = virtualCall(
        (n) => (n < 2 ? cold<TxResult>('-#', undefined, reported) : cold('-(a|)', { a: okResult(2) })),
        { scheduler: asyncScheduler },
      );
      expectObservable(call.pipe(retryWithPolicy(flat))).toBe('1002ms (a|)', { a: okResult(2) });
    });
  });

  it('tells the call about each retry', () => {
    testScheduler().run(({ cold, flush }) => {
      const call = virtualCall(
        (n) => (n < 3 ? cold<TxResult>('-#', undefined, transient()) : cold('-(a|)', { a: okResult(3) })),
        {
          scheduler: asyncScheduler,
        },
      );
      const events: RetryEvent[] = [];
      call.state.onRetry((event) => events.push(event));
      call.pipe(retryWithPolicy(flat)).subscribe();
      flush();
      expect(events.map(({ attempt, delayMs }) => [attempt, delayMs])).toEqual([
        [1, 1_000],
        [2, 2_000],
      ]);
    });
  });

  it('never makes more than maxAttempts attempts, nor waits longer than the caps allow (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 500 }),
        fc.integer({ min: 0, max: 2_000 }),
        (maxAttempts, failures, baseDelayMs, extra) => {
          const scheduler = new VirtualTimeScheduler();
          let made = 0;
          let finishedAt = -1;
          const call = virtualCall(
            (n) => {
              made = n;
              return n <= failures ? throwError(() => transient()) : of(okResult(n));
            },
            { scheduler },
          );
          const policy = {
            maxAttempts,
            baseDelayMs,
            maxDelayMs: baseDelayMs + extra,
            jitter: 'full' as const,
          };
          call.pipe(retryWithPolicy(policy, { scheduler })).subscribe({
            error: () => (finishedAt = scheduler.now()),
            complete: () => (finishedAt = scheduler.now()),
          });
          scheduler.flush();
          expect(made).toBe(Math.min(maxAttempts, failures + 1));
          expect(finishedAt).toBeGreaterThanOrEqual(0);
          expect(finishedAt).toBeLessThanOrEqual((made - 1) * (baseDelayMs + extra));
        },
      ),
      fuzz(100),
    );
  });

  it('takes any policy or refuses it with MCP_TX_VALIDATION naming the field; what it takes never waits past maxDelayMs (property)', () => {
    const policy = fc.record(
      {
        maxAttempts: optionValue,
        baseDelayMs: optionValue,
        maxDelayMs: optionValue,
        multiplier: optionValue,
        jitter: fc.oneof(fc.constantFrom(true, false, 'full', 'equal', 'none', 'proportional'), optionValue),
        deadlineMs: optionValue,
        retryableErrors: fc.oneof(fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }), optionValue),
        retryOn: optionValue,
        retryAmbiguous: optionValue,
        other: optionValue,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        policy,
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true }),
        (candidate, retry, random) => {
          let resolved: RetryPolicy | false;
          try {
            retryWithPolicy(candidate as PartialRetryPolicy);
            resolved = mergeRetry(candidate as PartialRetryPolicy);
          } catch (error) {
            expect(error).toMatchObject({
              code: TxErrorCode.Validation,
              field: expect.stringMatching(/^retry/),
            });
            return;
          }
          if (resolved === false) throw new Error('a policy object resolves to a policy');
          const delay = retryDelay(resolved, retry, () => random);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(resolved.maxDelayMs);
        },
      ),
      fuzz(300),
    );
  });

  it('rejects a bad policy or options at assembly, naming the field', () => {
    expect(() => retryWithPolicy({ maxAttempts: 0 })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'retry.maxAttempts' }),
    );
    expect(() => retryWithPolicy({ baseDelayMs: 500, maxDelayMs: 100 })).toThrowError(
      expect.objectContaining({ field: 'retry.maxDelayMs' }),
    );
    expect(() => retryWithPolicy({}, { scheduler: {} as VirtualTimeScheduler })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.scheduler' }),
    );
  });
});
