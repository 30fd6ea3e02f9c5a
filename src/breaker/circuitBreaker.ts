import {
  asyncScheduler,
  BehaviorSubject,
  defer,
  distinctUntilChanged,
  Observable,
  of,
  type SchedulerLike,
  type Subscription,
  throwError,
} from 'rxjs';
import { z } from 'zod';
import { TxError, TxErrorCode } from '../errors.js';
import { parseOrThrow, SchedulerSchema } from '../schemas.js';

/** Where a breaker is: letting calls through, refusing them, or letting probes through. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** The outcome of one admitted call, reported exactly once. */
export interface BreakerPermit {
  success(): void;
  /** Counts only if the breaker's `isFailure(error)` says so; otherwise it is a release. */
  failure(error: unknown): void;
  /** The call ended without an outcome that counts (cancelled): frees a probe slot, counts nothing. */
  release(): void;
}

/**
 * What `circuitBreak` needs from a breaker: `acquire()` emits one {@link BreakerPermit} and
 * completes when a call may go, or errors with `MCP_TX_CIRCUIT_OPEN` (with `retryAfterMs`) when it
 * may not. In-process ({@link CircuitBreaker}) or shared between processes (Redis).
 *
 * @example
 * breaker.acquire().subscribe({ next: (permit) => run().then(() => permit.success(), (e) => permit.failure(e)) });
 */
export interface Breaker {
  acquire(): Observable<BreakerPermit>;
}

const CircuitBreakerOptionsSchema = z.strictObject({
  failureThreshold: z.number().int('must be a whole number').min(1, 'must be at least 1').default(5),
  recoveryTimeoutMs: z
    .number()
    .int('must be a whole number')
    .positive('must be greater than 0')
    .default(60_000),
  halfOpenMaxCalls: z.number().int('must be a whole number').min(1, 'must be at least 1').default(1),
  successThreshold: z.number().int('must be a whole number').min(1, 'must be at least 1').default(1),
  isFailure: z
    .custom<(error: unknown) => boolean>((value) => typeof value === 'function', 'must be a function')
    .optional(),
  scheduler: SchedulerSchema.optional(),
});

/** Options of {@link CircuitBreaker}. */
export type CircuitBreakerOptions = z.input<typeof CircuitBreakerOptionsSchema>;

const BreakerSnapshotSchema = z.strictObject({
  state: z.enum(['closed', 'open', 'half-open']),
  failures: z.number().int().min(0),
  successes: z.number().int().min(0),
  openedAt: z.number().finite(),
});

/** A breaker's state as plain JSON, from {@link CircuitBreaker.export}. */
export type BreakerSnapshot = z.infer<typeof BreakerSnapshotSchema>;

/** Failures that say the server or the network is unwell; caller mistakes and refusals do not count. */
const FAILURE_CODES: ReadonlySet<string> = new Set([
  TxErrorCode.Timeout,
  TxErrorCode.NetworkError,
  TxErrorCode.ToolError,
]);

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
  return FAILURE_CODES.has(error.code) || (error.code === TxErrorCode.ProtocolError && error.retryable);
}

/**
 * An in-process circuit breaker. Closed, it lets calls through and counts consecutive failures;
 * at `failureThreshold` it opens and refuses calls at once with `MCP_TX_CIRCUIT_OPEN` (carrying
 * `retryAfterMs`); after `recoveryTimeoutMs` it is half-open and admits up to `halfOpenMaxCalls`
 * probes at a time: `successThreshold` successful probes close it, one failed probe re-opens it.
 * `state$` emits the state and every transition; `export()` / `restore()` carry it across restarts.
 *
 * @example
 * const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 10_000 });
 * breaker.state$.subscribe((state) => console.log('breaker', state));
 * tx.attempt$('search', { q }).pipe(circuitBreak(breaker), retryWithPolicy());
 */
export class CircuitBreaker implements Breaker {
  private readonly settings: z.output<typeof CircuitBreakerOptionsSchema>;
  private readonly scheduler: SchedulerLike;
  private readonly states = new BehaviorSubject<BreakerState>('closed');
  private failures = 0;
  private successes = 0;
  private probes = 0;
  private openedAt = 0;
  /** Counts transitions, so that the outcome of a call admitted before one does not count after it. */
  private generation = 0;
  private recovery?: Subscription;

  private watchers = 0;

  /** The state now and every transition after it, half-open included, on time. */
  readonly state$: Observable<BreakerState> = new Observable<BreakerState>((subscriber) => {
    this.recoverIfDue();
    this.watchers += 1;
    this.syncRecoveryTimer();
    const subscription = this.states.pipe(distinctUntilChanged()).subscribe(subscriber);
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

  get state(): BreakerState {
    this.recoverIfDue();
    return this.states.value;
  }

  acquire(): Observable<BreakerPermit> {
    return defer(() => {
      switch (this.state) {
        case 'closed':
          return of(this.permit(false));
        case 'half-open':
          if (this.probes >= this.settings.halfOpenMaxCalls) return throwError(() => this.refusal(0));
          this.probes += 1;
          return of(this.permit(true));
        case 'open':
          return throwError(() =>
            this.refusal(this.openedAt + this.settings.recoveryTimeoutMs - this.scheduler.now()),
          );
      }
    });
  }

  /** Does this error count as a failure? (`isFailure` option, else {@link defaultIsFailure}.) */
  isFailure(error: unknown): boolean {
    return (this.settings.isFailure ?? defaultIsFailure)(error);
  }

  /** The state as plain JSON. In-flight probes are not part of it. */
  export(): BreakerSnapshot {
    return { state: this.state, failures: this.failures, successes: this.successes, openedAt: this.openedAt };
  }

  /** Takes over an exported state (validated); an open breaker whose recovery time passed is half-open. */
  restore(snapshot: BreakerSnapshot): void {
    const { state, failures, successes, openedAt } = parseOrThrow(
      BreakerSnapshotSchema,
      snapshot,
      'snapshot',
    );
    this.openedAt = openedAt;
    this.moveTo(state);
    this.failures = failures;
    this.successes = successes;
    this.recoverIfDue();
  }

  /** Completes `state$` (and so stops its recovery timer). */
  dispose(): void {
    this.states.complete();
    this.recovery?.unsubscribe();
    this.recovery = undefined;
  }

  private permit(probe: boolean): BreakerPermit {
    const generation = this.generation;
    let reported = false;
    const report = (outcome: () => void) => {
      if (reported) return;
      reported = true;
      if (probe && generation === this.generation) this.probes -= 1;
      if (generation === this.generation) outcome();
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

  private refusal(retryAfterMs: number): TxError {
    const wait = Math.max(0, Math.ceil(retryAfterMs));
    return new TxError(
      TxErrorCode.CircuitOpen,
      `Circuit breaker is ${this.states.value}; retry after ${wait} ms`,
      {
        retryAfterMs: wait,
      },
    );
  }

  private recoverIfDue(): void {
    if (this.states.value !== 'open') return;
    if (this.scheduler.now() >= this.openedAt + this.settings.recoveryTimeoutMs) this.moveTo('half-open');
  }

  private moveTo(state: BreakerState): void {
    this.generation += 1;
    this.probes = 0;
    this.successes = 0;
    if (state === 'closed') this.failures = 0;
    this.states.next(state);
    this.syncRecoveryTimer();
  }

  /**
   * While open and watched through `state$`, one timer announces half-open on time. Unwatched, the
   * state is worked out when read, and no timer keeps the process alive.
   */
  private syncRecoveryTimer(): void {
    const wanted = this.states.value === 'open' && this.watchers > 0;
    if (!wanted) {
      this.recovery?.unsubscribe();
      this.recovery = undefined;
      return;
    }
    if (this.recovery !== undefined) return;
    const dueIn = Math.max(0, this.openedAt + this.settings.recoveryTimeoutMs - this.scheduler.now());
    this.recovery = this.scheduler.schedule(() => {
      this.recovery = undefined;
      this.moveTo('half-open');
    }, dueIn);
  }
}
