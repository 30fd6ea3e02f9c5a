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
import { z } from 'zod';
import { parseOrThrow, SchedulerSchema, TimeoutMsSchema } from '../config/validators.js';
import { errorCodeTraits, TxError, TxErrorCode } from '../core/errors.js';

/**
 * Where a breaker is: `closed` lets calls through, `open` refuses them, `half-open` lets a few
 * probes through to see whether the server has recovered.
 *
 * @example
 * breaker.state$.subscribe((state: BreakerState) => console.log(`breaker ${state}`));
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * Leave for one call to go, on which the call's outcome is reported once (later reports are ignored).
 *
 * @example
 * breaker.acquire().subscribe((permit) => {
 *   callTheServer().then(() => permit.success(), (error) => permit.failure(error));
 * });
 */
export interface BreakerPermit {
  /** The call succeeded: resets the failure count, or counts a successful probe when half-open. */
  success(): void;
  /** Counts only if the breaker's `isFailure(error)` says so; otherwise it is a release. */
  failure(error: unknown): void;
  /** The call ended without an outcome that counts (cancelled): frees a probe slot, counts nothing. */
  release(): void;
}

/**
 * What `circuitBreak` needs from a breaker: `acquire()` emits one {@link BreakerPermit} and
 * completes when a call may go, or errors with `MCP_TX_CIRCUIT_OPEN` (with `retryAfterMs`) when it
 * may not. Admission may be asynchronous (a breaker shared through Redis). In-process:
 * {@link CircuitBreaker}.
 *
 * @example
 * breaker.acquire().subscribe({ next: (permit) => run().then(() => permit.success(), (e) => permit.failure(e)) });
 */
export interface Breaker {
  /**
   * Emits one permit and completes when a call may go; errors with `MCP_TX_CIRCUIT_OPEN` (and
   * `retryAfterMs`) when it may not. Cold: each subscription asks again.
   */
  acquire(): Observable<BreakerPermit>;
}

const count = (minimum: number) =>
  z.number().int('must be a whole number').min(minimum, `must be at least ${minimum}`);

const CircuitBreakerOptionsSchema = z.strictObject({
  failureThreshold: count(1).default(5),
  recoveryTimeoutMs: TimeoutMsSchema.default(60_000),
  halfOpenMaxCalls: count(1).default(1),
  successThreshold: count(1).default(1),
  isFailure: z
    .custom<(error: unknown) => boolean>((value) => typeof value === 'function', 'must be a function')
    .optional(),
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link CircuitBreaker}, all optional:
 *
 * - `failureThreshold` (5): consecutive failures, while closed, that open the breaker.
 * - `recoveryTimeoutMs` (60 000): how long it stays open before it lets probes through (half-open).
 * - `halfOpenMaxCalls` (1): probes in flight at once while half-open; further calls are refused.
 * - `successThreshold` (1): successful probes that close it again.
 * - `isFailure` ({@link defaultIsFailure}): `(error) => boolean`, which errors count as failures.
 * - `scheduler` (`asyncScheduler`): the clock and timers (virtual time in tests).
 *
 * @example
 * new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 10_000, successThreshold: 2 });
 */
export type CircuitBreakerOptions = z.input<typeof CircuitBreakerOptionsSchema>;

const BreakerSnapshotSchema = z.strictObject({
  state: z.enum(['closed', 'open', 'half-open'], { message: "must be 'closed', 'open' or 'half-open'" }),
  /** Consecutive failures counted while closed. */
  failures: count(0),
  /** Successful probes while half-open. */
  successes: count(0),
  /** When it last opened, on the breaker's clock (ms since the epoch with the default scheduler). */
  openedAt: z.number().finite('must be a finite number'),
});

/**
 * A breaker's state as plain JSON, from {@link CircuitBreaker.export}: `state`, `failures`
 * (consecutive, while closed), `successes` (probes, while half-open) and `openedAt` (when it last
 * opened, on the breaker's clock). {@link CircuitBreaker.restore} takes it back.
 *
 * @example
 * await writeFile('breaker.json', JSON.stringify(breaker.export()));
 * // after a restart:
 * breaker.restore(JSON.parse(await readFile('breaker.json', 'utf8')) as BreakerSnapshot);
 */
export type BreakerSnapshot = z.infer<typeof BreakerSnapshotSchema>;

/**
 * The default `isFailure`: timeouts, network errors, tool errors, server-side protocol errors that
 * are retryable, and anything that is not a TxError. Not: validation errors, idempotency conflicts,
 * cancellations, rate limiting, in-progress keys, an open circuit.
 *
 * @example
 * new CircuitBreaker({ isFailure: (error) => defaultIsFailure(error) && !String(error).includes('404') });
 */
export function defaultIsFailure(error: unknown): boolean {
  if (!(error instanceof TxError)) return true;
  return (
    errorCodeTraits(error.code).breakerFailure ||
    (error.code === TxErrorCode.ProtocolError && error.retryable)
  );
}

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
  private current: BreakerState = 'closed';
  private failures = 0;
  private successes = 0;
  private probes = 0;
  private openedAt = 0;
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
    return this.current;
  }

  /** A permit at once when closed or when a half-open probe slot is free; else `MCP_TX_CIRCUIT_OPEN`. */
  acquire(): Observable<BreakerPermit> {
    return defer(() => {
      switch (this.state) {
        case 'closed':
          return of(this.permit(false));
        case 'half-open':
          if (this.probes >= this.settings.halfOpenMaxCalls) return throwError(() => this.probesTaken());
          this.probes += 1;
          return of(this.permit(true));
        case 'open':
          return throwError(() => this.openRefusal());
      }
    });
  }

  /** Does this error count as a failure? (`isFailure` option, else {@link defaultIsFailure}.) */
  isFailure(error: unknown): boolean {
    return (this.settings.isFailure ?? defaultIsFailure)(error);
  }

  /** The state as plain JSON. In-flight calls are not part of it. */
  export(): BreakerSnapshot {
    return { state: this.state, failures: this.failures, successes: this.successes, openedAt: this.openedAt };
  }

  /**
   * Takes over an exported state (validated). Outcomes of calls admitted before do not count; an
   * open breaker whose recovery time has passed is half-open.
   */
  restore(snapshot: BreakerSnapshot): void {
    const { state, failures, successes, openedAt } = parseOrThrow(
      BreakerSnapshotSchema,
      snapshot,
      'snapshot',
    );
    this.openedAt = openedAt;
    this.moveTo(state === 'open' && this.recoveryDue() ? 'half-open' : state);
    this.failures = failures;
    if (this.current === state) this.successes = successes;
  }

  /** Completes `state$` and cancels its timer. The breaker still admits and counts calls. */
  dispose(): void {
    this.transitions.complete();
    this.syncRecoveryTimer();
  }

  private permit(probe: boolean): BreakerPermit {
    const generation = this.generation;
    let reported = false;
    const report = (counts: () => void) => {
      if (reported) return;
      reported = true;
      if (generation !== this.generation) return;
      if (probe) this.probes -= 1;
      counts();
    };
    return {
      success: () => report(() => this.onSuccess(probe)),
      failure: (error) => report(() => this.isFailure(error) && this.onFailure(probe)),
      release: () => report(() => undefined),
    };
  }

  private onSuccess(probe: boolean): void {
    if (!probe) {
      this.failures = 0;
      return;
    }
    this.successes += 1;
    if (this.successes >= this.settings.successThreshold) this.moveTo('closed');
  }

  private onFailure(probe: boolean): void {
    this.failures += 1;
    if (probe || this.failures >= this.settings.failureThreshold) {
      this.openedAt = this.scheduler.now();
      this.moveTo('open');
    }
  }

  private openRefusal(): TxError {
    const retryAfterMs = Math.max(
      0,
      Math.ceil(this.openedAt + this.settings.recoveryTimeoutMs - this.scheduler.now()),
    );
    return new TxError(TxErrorCode.CircuitOpen, `Circuit breaker is open; retry after ${retryAfterMs} ms`, {
      retryAfterMs,
    });
  }

  private probesTaken(): TxError {
    const { halfOpenMaxCalls } = this.settings;
    return new TxError(
      TxErrorCode.CircuitOpen,
      `Circuit breaker is half-open and its ${halfOpenMaxCalls} probe slot(s) are taken; retry once a probe ends`,
      { retryAfterMs: 0 },
    );
  }

  private recoveryDue(): boolean {
    return this.scheduler.now() >= this.openedAt + this.settings.recoveryTimeoutMs;
  }

  private recoverIfDue(): void {
    if (this.current === 'open' && this.recoveryDue()) this.moveTo('half-open');
  }

  private moveTo(state: BreakerState): void {
    this.generation += 1;
    this.probes = 0;
    this.successes = 0;
    if (state === 'closed') this.failures = 0;
    this.current = state;
    this.syncRecoveryTimer();
    this.transitions.next(state);
  }

  /**
   * While open and watched through `state$`, one timer announces half-open on time. Unwatched, the
   * state is worked out when read, and no timer keeps the process alive.
   */
  private syncRecoveryTimer(): void {
    if (this.current !== 'open' || this.watchers === 0) {
      this.recovery?.unsubscribe();
      this.recovery = undefined;
      return;
    }
    if (this.recovery !== undefined) return;
    const dueInMs = Math.max(0, this.openedAt + this.settings.recoveryTimeoutMs - this.scheduler.now());
    this.recovery = this.scheduler.schedule(() => {
      this.recovery = undefined;
      this.recoverIfDue();
      this.syncRecoveryTimer(); // a timer that fired a little early waits for the rest
    }, dueInMs);
  }
}
