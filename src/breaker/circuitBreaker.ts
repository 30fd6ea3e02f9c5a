import {
  asyncScheduler,
  defer,
  distinctUntilChanged,
  Observable,
  of,
  type SchedulerLike,
  Subject,
  type Subscription,
  startWith,
  throwError,
} from 'rxjs';
import type * as z from 'zod';
import { parseOrThrow, SchedulerSchema } from '../config/validators.js';
import type { TxError } from '../core/errors.js';
import {
  type Breaker,
  type BreakerPermit,
  type BreakerState,
  circuitOpenError,
  permitReportingOnce,
  probeSlotsTakenError,
} from './breaker.js';
import {
  BreakerOptionsSchema,
  type BreakerSnapshot,
  parseSnapshot,
  wholeNumberAtLeast,
} from './breakerSchemas.js';
import { afterOutcome, recovered, recoveryDueAt, retryAfterMs } from './breakerStrategy.js';

export { type Breaker, type BreakerPermit, type BreakerState, defaultIsFailure } from './breaker.js';
export type { BreakerSnapshot } from './breakerSchemas.js';

const CircuitBreakerOptionsSchema = BreakerOptionsSchema.extend({
  halfOpenMaxCalls: wholeNumberAtLeast(1).default(1),
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link CircuitBreaker}, all optional:
 *
 * - `failureThreshold` (5): consecutive failures, while closed, that open the breaker.
 * - `recoveryTimeoutMs` (60 000): how long it stays open before it lets probes through (half-open);
 *   at most 2 147 483 647.
 * - `halfOpenMaxCalls` (1): probes in flight at once while half-open; further calls are refused.
 * - `successThreshold` (1): successful probes that close it again.
 * - `isFailure` ({@link defaultIsFailure}): `(error) => boolean`, which errors count as failures.
 * - `scheduler` (`asyncScheduler`): the clock and timers (virtual time in tests).
 *
 * @example
 * new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 10_000, successThreshold: 2 });
 */
export type CircuitBreakerOptions = z.input<typeof CircuitBreakerOptionsSchema>;

/**
 * An in-process circuit breaker. Closed, it lets calls through and counts consecutive failures (a
 * success resets the count); at `failureThreshold` it opens and refuses calls at once with
 * `MCP_TX_CIRCUIT_OPEN` carrying `retryAfterMs`, the time left until half-open. After
 * `recoveryTimeoutMs` it is half-open and admits up to `halfOpenMaxCalls` probes at a time (others
 * are refused): `successThreshold` successful probes close it, one failed probe re-opens it. The
 * state is worked out from `scheduler.now()` when read; while open and watched through `state$`,
 * one timer announces half-open on time. `export()` / `restore()` carry the state across restarts.
 *
 * @example
 * const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 10_000 });
 * breaker.state$.subscribe((state) => console.log('breaker', state));
 * tx.attempt$('search', { q }).pipe(circuitBreak(breaker), retryWithPolicy());
 */
export class CircuitBreaker implements Breaker {
  private readonly settings: z.output<typeof CircuitBreakerOptionsSchema>;
  private readonly scheduler: SchedulerLike;
  private readonly transitions = new Subject<BreakerState>();
  private snapshot: BreakerSnapshot = { state: 'closed', failures: 0, successes: 0, openedAt: 0 };
  /** Probes in flight in the current half-open period. */
  private probes = 0;
  /** Counts transitions, so that the outcome of a call admitted before one does not count after it. */
  private generation = 0;
  private watchers = 0;
  private recovery?: Subscription;

  /** The state now, then every transition (half-open on time, with no call needed); completes on `dispose()`. */
  readonly state$: Observable<BreakerState> = new Observable<BreakerState>((subscriber) => {
    this.watchers += 1;
    this.syncRecoveryTimer();
    const subscription = defer(() => this.transitions.pipe(startWith(this.state)))
      .pipe(distinctUntilChanged())
      .subscribe(subscriber);
    return () => {
      subscription.unsubscribe();
      this.watchers -= 1;
      this.syncRecoveryTimer();
    };
  });

  constructor(options: CircuitBreakerOptions = {}) {
    this.settings = parseOrThrow(CircuitBreakerOptionsSchema, options, 'options');
    this.scheduler = this.settings.scheduler ?? asyncScheduler;
  }

  /** The state now (an open breaker whose recovery time has passed is half-open). */
  get state(): BreakerState {
    this.recoverIfDue();
    return this.snapshot.state;
  }

  /** A permit at once when closed or when a half-open probe slot is free; else `MCP_TX_CIRCUIT_OPEN`. */
  acquire(): Observable<BreakerPermit> {
    return defer(() => {
      const permit = this.tryAcquire();
      return permit === undefined ? throwError(() => this.refusal()) : of(permit);
    });
  }

  /** A permit now when closed or when a half-open probe slot is free (taking it); else `undefined`. */
  tryAcquire(): BreakerPermit | undefined {
    switch (this.state) {
      case 'closed':
        return this.permit();
      case 'half-open':
        if (this.probes >= this.settings.halfOpenMaxCalls) return undefined;
        this.probes += 1;
        return this.permit();
      case 'open':
        return undefined;
    }
  }

  /** Does this error count as a failure? (`isFailure` option, else {@link defaultIsFailure}.) */
  isFailure(error: unknown): boolean {
    return this.settings.isFailure(error);
  }

  /** The state as plain JSON. In-flight calls are not part of it. */
  export(): BreakerSnapshot {
    this.recoverIfDue();
    return { ...this.snapshot };
  }

  /**
   * Takes over an exported state (validated). Outcomes of calls admitted before do not count; an
   * open breaker whose recovery time has passed is half-open.
   */
  restore(snapshot: BreakerSnapshot): void {
    this.snapshot = recovered(parseSnapshot(snapshot), this.settings, this.scheduler.now());
    this.onTransition();
  }

  /** Completes `state$` and cancels its timer. The breaker still admits and counts calls. */
  dispose(): void {
    this.transitions.complete();
    this.syncRecoveryTimer();
  }

  /** A permit for a call admitted now: a probe when half-open; its outcome counts while no transition came since. */
  private permit(): BreakerPermit {
    const generation = this.generation;
    const probe = this.snapshot.state === 'half-open';
    return permitReportingOnce(this.settings.isFailure, (outcome) => {
      if (generation !== this.generation) return;
      if (probe) this.probes -= 1;
      this.update(afterOutcome(this.snapshot, outcome, this.settings, this.scheduler.now()));
    });
  }

  /** Why `tryAcquire()` found no permit: open, or half-open with every probe slot taken. */
  private refusal(): TxError {
    const { halfOpenMaxCalls } = this.settings;
    if (this.snapshot.state === 'half-open') return probeSlotsTakenError(halfOpenMaxCalls);
    return circuitOpenError(retryAfterMs(this.snapshot.openedAt, this.settings, this.scheduler.now()));
  }

  private recoverIfDue(): void {
    this.update(recovered(this.snapshot, this.settings, this.scheduler.now()));
  }

  private update(next: BreakerSnapshot): void {
    const moved = next.state !== this.snapshot.state;
    this.snapshot = next;
    if (moved) this.onTransition();
  }

  /** A new generation: outcomes of calls admitted before no longer count, and no probe is in flight. */
  private onTransition(): void {
    this.generation += 1;
    this.probes = 0;
    this.syncRecoveryTimer();
    this.transitions.next(this.snapshot.state);
  }

  /**
   * While open and watched through `state$`, one timer announces half-open on time. Unwatched, the
   * state is worked out when read, and no timer keeps the process alive.
   */
  private syncRecoveryTimer(): void {
    if (this.snapshot.state !== 'open' || this.watchers === 0) {
      this.recovery?.unsubscribe();
      this.recovery = undefined;
      return;
    }
    if (this.recovery !== undefined) return;
    const dueInMs = Math.max(0, recoveryDueAt(this.snapshot.openedAt, this.settings) - this.scheduler.now());
    this.recovery = this.scheduler.schedule(() => {
      this.recovery = undefined;
      this.recoverIfDue();
      this.syncRecoveryTimer(); // a timer that fired a little early waits for the rest
    }, dueInMs);
  }
}
