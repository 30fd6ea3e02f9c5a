import fc from 'fast-check';
import { VirtualTimeScheduler } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import {
  type BreakerPermit,
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
  defaultIsFailure,
} from '../../../src/breaker/circuitBreaker.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import { fuzz, optionValue } from '../core/fuzz.js';

const timeout = () => new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true, ambiguous: true });
const STATES = { c: 'closed', o: 'open', h: 'half-open' } as const;

/** What `acquire()` gives at once: a permit, or the refusal. */
function acquire(breaker: CircuitBreaker): BreakerPermit | TxError {
  let outcome: BreakerPermit | TxError | undefined;
  breaker.acquire().subscribe({
    next: (permit) => {
      outcome = permit;
    },
    error: (error: TxError) => {
      outcome = error;
    },
  });
  if (outcome === undefined) throw new Error('acquire() did not answer at once');
  return outcome;
}

function admitted(breaker: CircuitBreaker): BreakerPermit {
  const outcome = acquire(breaker);
  if (outcome instanceof TxError) throw outcome;
  return outcome;
}

const fail = (breaker: CircuitBreaker, error: unknown = timeout()) => admitted(breaker).failure(error);
const succeed = (breaker: CircuitBreaker) => admitted(breaker).success();

/** Pending actions on a virtual scheduler: the breaker's timers. */
const timers = (scheduler: VirtualTimeScheduler) => scheduler.actions.filter((action) => !action.closed);

/** A breaker on a fresh virtual clock. */
function virtualBreaker(options: CircuitBreakerOptions = {}) {
  const scheduler = new VirtualTimeScheduler();
  return { scheduler, breaker: new CircuitBreaker({ ...options, scheduler }) };
}

describe('CircuitBreaker: closed and open', () => {
  it('opens at failureThreshold consecutive failures; a success in closed resets the count', () => {
    const { breaker } = virtualBreaker({ failureThreshold: 3, recoveryTimeoutMs: 1_000 });
    fail(breaker);
    fail(breaker);
    succeed(breaker);
    fail(breaker);
    fail(breaker);
    expect(breaker.state).toBe('closed');
    expect(breaker.export()).toMatchObject({ failures: 2 });
    fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('refuses at once while open, not retryable, with the time left until half-open', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 1_000 });
    scheduler.frame = 100;
    fail(breaker);
    scheduler.frame = 500;
    const refusal = acquire(breaker);
    expect(refusal).toBeInstanceOf(TxError);
    expect(refusal).toMatchObject({ code: TxErrorCode.CircuitOpen, retryable: false, retryAfterMs: 600 });
    expect((refusal as TxError).message).toContain('600 ms');
    scheduler.frame = 1_099;
    expect(acquire(breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen, retryAfterMs: 1 });
  });

  it('emits closed → open → half-open on time with no call → closed on state$ (marbles)', () => {
    const testScheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    testScheduler.run(({ cold, expectObservable }) => {
      const breaker = new CircuitBreaker({
        failureThreshold: 2,
        recoveryTimeoutMs: 100,
        scheduler: testScheduler,
      });
      cold('-f-f 150ms s').subscribe((step) => (step === 's' ? succeed(breaker) : fail(breaker)));
      expectObservable(breaker.state$, '^ 300ms !').toBe('c--o 99ms h 50ms c', STATES);
    });
  });

  it('replays the current state to a late watcher, lazily worked out from the clock', () => {
    const testScheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    testScheduler.run(({ cold, expectObservable }) => {
      const breaker = new CircuitBreaker({
        failureThreshold: 1,
        recoveryTimeoutMs: 50,
        scheduler: testScheduler,
      });
      cold('f').subscribe(() => fail(breaker));
      expectObservable(breaker.state$, '20ms ^ 60ms !').toBe('20ms o 29ms h', STATES);
      expectObservable(breaker.state$, '70ms ^ 10ms !').toBe('70ms h', STATES);
    });
  });
});

describe('CircuitBreaker: half-open', () => {
  it('admits halfOpenMaxCalls probes at a time and refuses the others', () => {
    const { scheduler, breaker } = virtualBreaker({
      failureThreshold: 1,
      recoveryTimeoutMs: 100,
      halfOpenMaxCalls: 2,
      successThreshold: 2,
    });
    fail(breaker);
    scheduler.frame = 100;
    expect(breaker.state).toBe('half-open');
    const probes = [admitted(breaker), admitted(breaker)];
    const refusal = acquire(breaker);
    expect(refusal).toMatchObject({ code: TxErrorCode.CircuitOpen, retryable: false, retryAfterMs: 0 });
    expect((refusal as TxError).message).toContain('half-open');
    probes[0]?.success();
    expect(breaker.state).toBe('half-open');
    const third = admitted(breaker);
    probes[1]?.success();
    expect(breaker.state).toBe('closed');
    third.failure(timeout()); // admitted as a probe: its outcome no longer counts once closed
    expect(breaker.export()).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('tryAcquire admits while closed, takes exactly the free probe slots when half-open, none while open', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 100 });
    breaker.tryAcquire()?.failure(timeout());
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(acquire(breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen, retryAfterMs: 100 });
    scheduler.frame = 100;
    const probe = breaker.tryAcquire();
    expect(probe).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(acquire(breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen, retryAfterMs: 0 });
    probe?.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('re-opens on one failed probe, with a fresh recovery time', () => {
    const { scheduler, breaker } = virtualBreaker({
      failureThreshold: 3,
      recoveryTimeoutMs: 100,
      successThreshold: 3,
    });
    for (let index = 0; index < 3; index++) fail(breaker);
    scheduler.frame = 150;
    succeed(breaker);
    expect(breaker.state).toBe('half-open');
    fail(breaker);
    expect(breaker.state).toBe('open');
    expect(breaker.export()).toMatchObject({ openedAt: 150, successes: 0 });
    expect(acquire(breaker)).toMatchObject({ retryAfterMs: 100 });
  });

  it('frees a probe slot when a probe is released or fails with an error that does not count', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 10 });
    fail(breaker);
    scheduler.frame = 10;
    admitted(breaker).release();
    admitted(breaker).failure(new TxError(TxErrorCode.Validation, 'bad input'));
    const probe = admitted(breaker);
    expect(breaker.state).toBe('half-open');
    probe.success();
    probe.failure(timeout()); // ignored: a permit reports once
    expect(breaker.state).toBe('closed');
  });

  it('ignores the outcome of a call admitted before the last transition', () => {
    const { scheduler, breaker } = virtualBreaker({
      failureThreshold: 1,
      recoveryTimeoutMs: 10,
      halfOpenMaxCalls: 2,
    });
    const fromClosed = admitted(breaker);
    fail(breaker);
    scheduler.frame = 10;
    const [failing, stale] = [admitted(breaker), admitted(breaker)];
    failing.failure(timeout());
    scheduler.frame = 20;
    const probe = admitted(breaker);
    stale.success(); // a probe of the last half-open period: it neither closes the breaker nor frees a slot
    fromClosed.success();
    expect(breaker.state).toBe('half-open');
    admitted(breaker);
    expect(acquire(breaker)).toBeInstanceOf(TxError);
    probe.success();
    expect(breaker.state).toBe('closed');
    stale.failure(timeout());
    fromClosed.failure(timeout());
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: what counts as a failure', () => {
  it.each([
    ['a timeout', timeout(), true],
    ['a network error', new TxError(TxErrorCode.NetworkError, 'closed', { retryable: true }), true],
    ['a tool error', new TxError(TxErrorCode.ToolError, 'upstream down'), true],
    [
      'a retryable protocol error',
      new TxError(TxErrorCode.ProtocolError, 'internal', { retryable: true }),
      true,
    ],
    ['an error that is not a TxError', new Error('boom'), true],
    ['a permanent protocol error', new TxError(TxErrorCode.ProtocolError, 'invalid params'), false],
    ['a validation error', new TxError(TxErrorCode.Validation, 'bad'), false],
    ['an idempotency conflict', new TxError(TxErrorCode.IdempotencyConflict, 'other args'), false],
    ['a cancellation', new TxError(TxErrorCode.Cancelled, 'gone'), false],
    ['a rate limit', new TxError(TxErrorCode.RateLimited, 'full'), false],
    ['a key in progress', new TxError(TxErrorCode.InProgress, 'busy', { retryable: true }), false],
    ['an open circuit', new TxError(TxErrorCode.CircuitOpen, 'open'), false],
  ])('%s counts: %s', (_, error, counts) => {
    expect(defaultIsFailure(error)).toBe(counts);
    const { breaker } = virtualBreaker({ failureThreshold: 1 });
    fail(breaker, error);
    expect(breaker.state).toBe(counts ? 'open' : 'closed');
  });

  it('takes an isFailure option instead of the default', () => {
    const { breaker } = virtualBreaker({
      failureThreshold: 1,
      isFailure: (error) => error instanceof TxError && error.code === TxErrorCode.RateLimited,
    });
    fail(breaker, timeout());
    expect(breaker.state).toBe('closed');
    fail(breaker, new TxError(TxErrorCode.RateLimited, 'full'));
    expect(breaker.state).toBe('open');
  });
});

describe('CircuitBreaker: export and restore', () => {
  it('round-trips through JSON; a restored open breaker recovers on the clock', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50 });
    scheduler.frame = 5;
    fail(breaker);
    const snapshot = breaker.export();
    expect(snapshot).toEqual({ state: 'open', failures: 1, successes: 0, openedAt: 5 });
    const restored = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50, scheduler });
    restored.restore(JSON.parse(JSON.stringify(snapshot)));
    expect(restored.export()).toEqual(snapshot);
    expect(acquire(restored)).toMatchObject({ retryAfterMs: 50 });
    scheduler.frame = 55;
    expect(restored.state).toBe('half-open');
  });

  it('restores an open breaker whose recovery time has passed as half-open, in one transition', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50 });
    const seen: BreakerState[] = [];
    breaker.state$.subscribe((state) => seen.push(state));
    scheduler.frame = 200;
    breaker.restore({ state: 'open', failures: 1, successes: 0, openedAt: 100 });
    expect(seen).toEqual(['closed', 'half-open']);
    expect(timers(scheduler)).toHaveLength(0);
  });

  it('keeps restoring and exporting in step for any history (property)', () => {
    const step = fc.oneof(fc.constantFrom('ok' as const, 'fail' as const), fc.integer({ min: 1, max: 40 }));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), fc.array(step, { maxLength: 30 }), (history, after) => {
        const options = { failureThreshold: 2, recoveryTimeoutMs: 30, successThreshold: 2 };
        const { scheduler, breaker } = virtualBreaker(options);
        const play = (target: CircuitBreaker, steps: typeof history) =>
          steps.map((next) => {
            if (typeof next === 'number') scheduler.frame += next;
            else {
              const outcome = acquire(target);
              if (!(outcome instanceof TxError))
                next === 'ok' ? outcome.success() : outcome.failure(timeout());
            }
            return target.export();
          });
        play(breaker, history);
        const restored = new CircuitBreaker({ ...options, scheduler });
        restored.restore(JSON.parse(JSON.stringify(breaker.export())));
        expect(restored.export()).toEqual(breaker.export());
        const frame = scheduler.frame;
        const original = play(breaker, after);
        scheduler.frame = frame;
        expect(play(restored, after)).toEqual(original);
      }),
      fuzz(100),
    );
  });

  it.each([
    [{ state: 'ajar', failures: 0, successes: 0, openedAt: 0 }, 'snapshot.state'],
    [{ state: 'open', failures: -1, successes: 0, openedAt: 0 }, 'snapshot.failures'],
    [{ state: 'open', failures: 0, successes: 0.5, openedAt: 0 }, 'snapshot.successes'],
    [{ state: 'open', failures: 0, successes: 0, openedAt: Number.NaN }, 'snapshot.openedAt'],
    [{ state: 'open', failures: 0, successes: 0 }, 'snapshot.openedAt'],
    [{ state: 'open', failures: 0, successes: 0, openedAt: 0, probes: 1 }, 'snapshot.probes'],
  ])('rejects the snapshot %o, naming %s', (snapshot, field) => {
    const { breaker } = virtualBreaker();
    expect(() => breaker.restore(snapshot as never)).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field }),
    );
    expect(breaker.state).toBe('closed');
  });

  it('restores any snapshot read back from JSON, or refuses it naming the field and keeps its state (property)', () => {
    const snapshot = fc.record(
      {
        state: fc.oneof(fc.constantFrom('closed', 'open', 'half-open'), optionValue),
        failures: optionValue,
        successes: optionValue,
        openedAt: optionValue,
        other: optionValue,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(snapshot, fc.integer({ min: 0, max: 100_000 }), (candidate, now) => {
        const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 1_000 });
        scheduler.frame = now;
        fail(breaker);
        const before = breaker.export();
        try {
          breaker.restore(candidate as never);
        } catch (error) {
          expect(error).toMatchObject({
            code: TxErrorCode.Validation,
            field: expect.stringMatching(/^snapshot/),
          });
          expect(breaker.export()).toEqual(before);
          return;
        }
        const restored = breaker.export();
        expect(['closed', 'open', 'half-open']).toContain(restored.state);
        expect(acquire(breaker)).toBeDefined(); // answers at once, whatever it restored
        breaker.dispose();
      }),
      fuzz(300),
    );
  });
});

describe('CircuitBreaker: timers', () => {
  it('keeps no timer while closed, nor while open and unwatched', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50 });
    const watching = breaker.state$.subscribe();
    expect(timers(scheduler)).toHaveLength(0);
    watching.unsubscribe();
    fail(breaker);
    expect(timers(scheduler)).toHaveLength(0);
    scheduler.frame = 50;
    expect(breaker.state).toBe('half-open');
  });

  it('keeps one timer while open and watched, cancelled when it leaves open, the last watcher leaves, or on dispose', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50 });
    const first = breaker.state$.subscribe();
    const second = breaker.state$.subscribe();
    fail(breaker);
    expect(timers(scheduler)).toHaveLength(1);
    scheduler.frame = 50;
    expect(breaker.state).toBe('half-open'); // read before the timer ran: it is cancelled
    expect(timers(scheduler)).toHaveLength(0);

    fail(breaker); // the probe fails: open again
    expect(timers(scheduler)).toHaveLength(1);
    first.unsubscribe();
    expect(timers(scheduler)).toHaveLength(1);
    second.unsubscribe();
    expect(timers(scheduler)).toHaveLength(0);

    const completed: boolean[] = [];
    breaker.state$.subscribe({ complete: () => completed.push(true) });
    expect(timers(scheduler)).toHaveLength(1);
    breaker.dispose();
    expect(completed).toEqual([true]);
    expect(timers(scheduler)).toHaveLength(0);
  });

  it('still admits and counts calls after dispose', () => {
    const { scheduler, breaker } = virtualBreaker({ failureThreshold: 1, recoveryTimeoutMs: 50 });
    breaker.dispose();
    fail(breaker);
    expect(breaker.state).toBe('open');
    scheduler.frame = 50;
    succeed(breaker);
    expect(breaker.state).toBe('closed');
    expect(timers(scheduler)).toHaveLength(0);
  });
});

describe('CircuitBreaker: invariants (property)', () => {
  type Step =
    | { kind: 'call'; outcome: 'ok' | 'fail' | 'ignored' | 'hold' }
    | { kind: 'settle'; index: number; outcome: 'ok' | 'fail' | 'release' }
    | { kind: 'wait'; ms: number };
  const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant('call' as const),
      outcome: fc.constantFrom('ok', 'fail', 'ignored', 'hold', 'hold'),
    }),
    fc.record({
      kind: fc.constant('settle' as const),
      index: fc.nat(),
      outcome: fc.constantFrom('ok', 'fail', 'release'),
    }),
    fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 80 }) }),
  );
  const EDGES = new Set(['closed>open', 'open>half-open', 'half-open>open', 'half-open>closed']);

  it('never admits a call while open, never more than halfOpenMaxCalls probes at once, half-open on time', () => {
    fc.assert(
      fc.property(
        fc.record({
          failureThreshold: fc.integer({ min: 1, max: 4 }),
          recoveryTimeoutMs: fc.integer({ min: 10, max: 60 }),
          halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
          successThreshold: fc.integer({ min: 1, max: 3 }),
        }),
        fc.array(stepArbitrary, { maxLength: 120 }),
        (options, steps) => {
          const { scheduler, breaker } = virtualBreaker(options);
          const held: BreakerPermit[] = [];
          /** Probes admitted in the current half-open period and not reported yet. */
          const probes = new Set<BreakerPermit>();
          let previous: BreakerState | undefined;
          let openedAt = 0;
          breaker.state$.subscribe((state) => {
            if (previous !== undefined) expect(EDGES.has(`${previous}>${state}`)).toBe(true);
            if (state === 'open') openedAt = scheduler.now();
            if (state === 'half-open') expect(scheduler.now()).toBe(openedAt + options.recoveryTimeoutMs);
            probes.clear();
            previous = state;
          });

          const report = (permit: BreakerPermit, outcome: 'ok' | 'fail' | 'ignored' | 'release') => {
            probes.delete(permit);
            if (outcome === 'ok') permit.success();
            else if (outcome === 'fail') permit.failure(timeout());
            else if (outcome === 'ignored') permit.failure(new TxError(TxErrorCode.Cancelled, 'gone'));
            else permit.release();
          };
          const call = (outcome: 'ok' | 'fail' | 'ignored' | 'hold') => {
            const before = breaker.state;
            const answer = acquire(breaker);
            if (before === 'closed') expect(answer).not.toBeInstanceOf(TxError);
            if (before === 'open') {
              expect(answer).toMatchObject({ code: TxErrorCode.CircuitOpen });
              expect((answer as TxError).retryAfterMs).toBeGreaterThan(0);
              expect((answer as TxError).retryAfterMs).toBeLessThanOrEqual(options.recoveryTimeoutMs);
            }
            if (before === 'half-open') {
              expect(answer instanceof TxError).toBe(probes.size === options.halfOpenMaxCalls);
              if (!(answer instanceof TxError)) probes.add(answer);
              expect(probes.size).toBeLessThanOrEqual(options.halfOpenMaxCalls);
            }
            if (answer instanceof TxError) return;
            if (outcome === 'hold') held.push(answer);
            else report(answer, outcome);
          };

          let at = 0;
          for (const step of steps) {
            if (step.kind === 'wait') at += step.ms;
            scheduler.schedule(() => {
              if (step.kind === 'call') call(step.outcome);
              if (step.kind === 'settle' && held.length > 0) {
                const [permit] = held.splice(step.index % held.length, 1);
                if (permit !== undefined) report(permit, step.outcome);
              }
            }, at);
          }
          scheduler.flush();
          breaker.dispose();
          expect(timers(scheduler)).toHaveLength(0);
        },
      ),
      fuzz(300),
    );
  });
});

describe('CircuitBreaker: options', () => {
  it('defaults to 5 failures, 60 s recovery, 1 probe, 1 success', () => {
    const { scheduler, breaker } = virtualBreaker();
    for (let index = 0; index < 4; index++) fail(breaker);
    expect(breaker.state).toBe('closed');
    fail(breaker);
    expect(acquire(breaker)).toMatchObject({ retryAfterMs: 60_000 });
    scheduler.frame = 60_000;
    const probe = admitted(breaker);
    expect(acquire(breaker)).toBeInstanceOf(TxError);
    probe.success();
    expect(breaker.state).toBe('closed');
  });

  it.each([
    [{ failureThreshold: 0 }, 'options.failureThreshold'],
    [{ failureThreshold: 1.5 }, 'options.failureThreshold'],
    [{ recoveryTimeoutMs: 0 }, 'options.recoveryTimeoutMs'],
    [{ recoveryTimeoutMs: 2 ** 31 }, 'options.recoveryTimeoutMs'],
    [{ halfOpenMaxCalls: 0 }, 'options.halfOpenMaxCalls'],
    [{ successThreshold: -1 }, 'options.successThreshold'],
    [{ isFailure: 'timeouts' }, 'options.isFailure'],
    [{ scheduler: {} }, 'options.scheduler'],
    [{ threshold: 3 }, 'options.threshold'],
  ])('rejects %o, naming %s', (options, field) => {
    expect(() => new CircuitBreaker(options as CircuitBreakerOptions)).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field }),
    );
  });

  it('takes any options or refuses them with MCP_TX_VALIDATION naming the field (property)', () => {
    const options = fc.record(
      {
        failureThreshold: optionValue,
        recoveryTimeoutMs: optionValue,
        halfOpenMaxCalls: optionValue,
        successThreshold: optionValue,
        isFailure: optionValue,
        other: optionValue,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(options, (candidate) => {
        let breaker: CircuitBreaker;
        try {
          breaker = new CircuitBreaker({ ...(candidate as object), scheduler: new VirtualTimeScheduler() });
        } catch (error) {
          expect(error).toMatchObject({
            code: TxErrorCode.Validation,
            field: expect.stringMatching(/^options/),
          });
          return;
        }
        expect(acquire(breaker)).not.toBeInstanceOf(TxError);
      }),
      fuzz(300),
    );
  });
});
