import fc from 'fast-check';
import { asyncScheduler, firstValueFrom, of, switchMap, VirtualTimeScheduler } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { circuitBreak } from '../../operators/circuitBreak.js';
import { type BreakerPermit, CircuitBreaker } from '../../src/breaker/circuitBreaker.js';
import { TxError, TxErrorCode, type TxResult } from '../../src/index.js';
import { okResult, virtualCall } from '../support/virtualCall.js';

const timeout = () => new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true, ambiguous: true });
const take = (breaker: CircuitBreaker): BreakerPermit | TxError => {
  let outcome: BreakerPermit | TxError | undefined;
  breaker
    .acquire()
    .subscribe({ next: (permit) => (outcome = permit), error: (error: TxError) => (outcome = error) });
  return outcome as BreakerPermit | TxError;
};
const fail = (breaker: CircuitBreaker, error: unknown = timeout()) =>
  (take(breaker) as BreakerPermit).failure(error);
const succeed = (breaker: CircuitBreaker) => (take(breaker) as BreakerPermit).success();

describe('CircuitBreaker', () => {
  it('opens after failureThreshold consecutive failures; a success in between resets the count', () => {
    const scheduler = new VirtualTimeScheduler();
    const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 1_000, scheduler });
    fail(breaker);
    fail(breaker);
    succeed(breaker);
    fail(breaker);
    fail(breaker);
    expect(breaker.state).toBe('closed');
    fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('refuses at once while open, with the time left until half-open', () => {
    const scheduler = new VirtualTimeScheduler();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 1_000, scheduler });
    fail(breaker);
    scheduler.schedule(() => {
      expect(take(breaker)).toMatchObject({
        code: TxErrorCode.CircuitOpen,
        retryable: false,
        retryAfterMs: 600,
      });
    }, 400);
    scheduler.flush();
  });

  it('emits closed → open → half-open (on time, with no call) → closed on state$ (marbles)', () => {
    new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(
      ({ expectObservable, cold }) => {
        const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeoutMs: 100 });
        cold('-a-b 150ms c').subscribe((step) => {
          if (step === 'c') succeed(breaker);
          else fail(breaker);
        });
        expectObservable(breaker.state$, '^ 300ms !').toBe('c--o 99ms h 50ms c', {
          c: 'closed',
          o: 'open',
          h: 'half-open',
        });
      },
    );
  });

  it('admits halfOpenMaxCalls probes at a time, closes after successThreshold, re-opens on a failed probe', () => {
    const scheduler = new VirtualTimeScheduler();
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      recoveryTimeoutMs: 100,
      halfOpenMaxCalls: 2,
      successThreshold: 2,
      scheduler,
    });
    fail(breaker);
    scheduler.frame = 100;
    expect(breaker.state).toBe('half-open');
    const probes = [take(breaker), take(breaker)] as BreakerPermit[];
    expect(take(breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen });
    probes[0]?.success();
    expect(breaker.state).toBe('half-open');
    probes[1]?.success();
    expect(breaker.state).toBe('closed');

    fail(breaker);
    scheduler.frame = 300;
    (take(breaker) as BreakerPermit).failure(timeout());
    expect(breaker.state).toBe('open');
  });

  it('does not count validation errors, conflicts, cancellations or releases as failures', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, scheduler: new VirtualTimeScheduler() });
    fail(breaker, new TxError(TxErrorCode.Validation, 'bad'));
    fail(breaker, new TxError(TxErrorCode.IdempotencyConflict, 'other args'));
    fail(breaker, new TxError(TxErrorCode.Cancelled, 'gone'));
    fail(breaker, new TxError(TxErrorCode.ProtocolError, 'invalid params', { retryable: false }));
    (take(breaker) as BreakerPermit).release();
    expect(breaker.state).toBe('closed');
    fail(breaker, new Error('not a TxError'));
    expect(breaker.state).toBe('open');
  });

  it('frees a probe slot when a probe is cancelled, and reports each outcome once', () => {
    const scheduler = new VirtualTimeScheduler();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 10, scheduler });
    fail(breaker);
    scheduler.frame = 10;
    const probe = take(breaker) as BreakerPermit;
    probe.release();
    probe.failure(timeout()); // ignored: already reported
    expect(breaker.state).toBe('half-open');
    expect(take(breaker)).not.toBeInstanceOf(TxError);
  });

  it('exports and restores its state; a restored open breaker recovers on the clock', () => {
    const scheduler = new VirtualTimeScheduler();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50, scheduler });
    fail(breaker);
    const snapshot = breaker.export();
    expect(snapshot).toEqual({ state: 'open', failures: 1, successes: 0, openedAt: 0 });
    const restored = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50, scheduler });
    restored.restore(JSON.parse(JSON.stringify(snapshot)));
    expect(restored.state).toBe('open');
    scheduler.frame = 50;
    expect(restored.state).toBe('half-open');
    expect(() => restored.restore({ state: 'ajar' } as never)).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'snapshot.state' }),
    );
  });

  it('keeps no timer unless state$ is watched, and none after the watcher leaves or dispose', () => {
    const scheduler = new VirtualTimeScheduler();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50, scheduler });
    fail(breaker);
    expect(scheduler.actions).toHaveLength(0);
    const watching = breaker.state$.subscribe();
    expect(scheduler.actions).toHaveLength(1);
    watching.unsubscribe();
    expect(scheduler.actions.filter((action) => !action.closed)).toHaveLength(0);
    breaker.state$.subscribe();
    breaker.dispose();
    expect(scheduler.actions.filter((action) => !action.closed)).toHaveLength(0);
  });

  it('never admits a call while open nor more than halfOpenMaxCalls probes at once (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.array(
          fc.oneof(
            fc.constant('ok'),
            fc.constant('fail'),
            fc.constant('hold'),
            fc.integer({ min: 1, max: 80 }),
          ),
          {
            maxLength: 80,
          },
        ),
        (halfOpenMaxCalls, steps) => {
          const scheduler = new VirtualTimeScheduler();
          const breaker = new CircuitBreaker({
            failureThreshold: 2,
            recoveryTimeoutMs: 50,
            halfOpenMaxCalls,
            scheduler,
          });
          const held: BreakerPermit[] = [];
          let probesOut = 0;
          for (const step of steps) {
            if (typeof step === 'number') {
              scheduler.frame += step;
              continue;
            }
            const before = breaker.state;
            const outcome = take(breaker);
            if (before === 'open') expect(outcome).toBeInstanceOf(TxError);
            if (outcome instanceof TxError) continue;
            if (before === 'half-open') probesOut += 1;
            if (step === 'hold') held.push(outcome);
            else if (step === 'ok') outcome.success();
            else outcome.failure(timeout());
            if (breaker.state !== 'half-open') probesOut = 0;
            expect(probesOut).toBeLessThanOrEqual(halfOpenMaxCalls);
          }
        },
      ),
    );
  });

  it('rejects bad options, naming the field', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrowError(
      expect.objectContaining({ field: 'options.failureThreshold' }),
    );
  });
});

describe('circuitBreak in virtual time', () => {
  it('counts each subscription: trips after the threshold and then refuses without subscribing', () => {
    new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(
      ({ cold, expectObservable, expectSubscriptions }) => {
        const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeoutMs: 1_000 });
        const failing = cold<TxResult>('-#', undefined, timeout());
        const call = () =>
          virtualCall(() => failing, { scheduler: asyncScheduler }).pipe(circuitBreak(breaker));
        expectObservable(call()).toBe(
          '-#',
          undefined,
          expect.objectContaining({ code: TxErrorCode.Timeout }),
        );
        expectObservable(call()).toBe(
          '-#',
          undefined,
          expect.objectContaining({ code: TxErrorCode.Timeout }),
        );
        const refused = cold<TxResult>('-(a|)', { a: okResult() });
        const later = cold('--x').pipe(
          switchMap(() =>
            virtualCall(() => refused, { scheduler: asyncScheduler }).pipe(circuitBreak(breaker)),
          ),
        );
        expectObservable(later).toBe(
          '--#',
          undefined,
          expect.objectContaining({
            code: TxErrorCode.CircuitOpen,
            retryAfterMs: 999,
            meta: expect.objectContaining({ status: 'rejected', attempts: 0 }),
          }),
        );
        expectSubscriptions(refused.subscriptions).toBe([]);
      },
    );
  });

  it('reports success at the result, so a consumer leaving right after it does not count as a cancel', async () => {
    const scheduler = new VirtualTimeScheduler();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 10, scheduler });
    fail(breaker);
    scheduler.frame = 10;
    expect(breaker.state).toBe('half-open');
    const probe = virtualCall(() => of(okResult()), { scheduler }).pipe(circuitBreak(breaker));
    await firstValueFrom(probe);
    expect(breaker.state).toBe('closed');
  });
});
