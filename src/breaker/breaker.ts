/**
 * What every circuit breaker is to its callers: the {@link Breaker} contract with its permits and
 * states, which errors count as failures, and the two pieces both breakers build the same way — a
 * permit that reports once, and the `MCP_TX_CIRCUIT_OPEN` refusal.
 */
import type { Observable } from 'rxjs';
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
  /**
   * Optional fast path: a permit taken now when the breaker admits at once (closed, or a free
   * half-open probe slot; the caller reports on it), else `undefined` (then `acquire()` refuses or
   * admits later). `circuitBreak` asks it first, so an admission costs no subscription; a breaker
   * without it (the Redis one) is only asked `acquire()`.
   *
   * @example
   * const permit = breaker.tryAcquire?.();
   * if (permit !== undefined) start(permit);
   * else breaker.acquire().subscribe({ next: start, error: refuse });
   */
  tryAcquire?(): BreakerPermit | undefined;
}

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
 * How a permitted call ended, as a breaker counts it: a `failure` is an error `isFailure` counts;
 * any other error, or a call that ended without an outcome, is a `release`.
 *
 * @example
 * const outcome: BreakerOutcome = isFailure(error) ? 'failure' : 'release';
 */
export type BreakerOutcome = 'success' | 'failure' | 'release';

/**
 * A permit that hands the first outcome reported on it to `report` (a failure `isFailure` does not
 * count arrives as a release) and ignores any later one.
 *
 * @example
 * return permitReportingOnce(settings.isFailure, (outcome) => this.count(outcome));
 */
export function permitReportingOnce(
  isFailure: (error: unknown) => boolean,
  report: (outcome: BreakerOutcome) => void,
): BreakerPermit {
  let reported = false;
  const once = (outcome: () => BreakerOutcome) => {
    if (reported) return;
    reported = true;
    report(outcome());
  };
  return {
    success: () => once(() => 'success'),
    failure: (error) => once(() => (isFailure(error) ? 'failure' : 'release')),
    release: () => once(() => 'release'),
  };
}

/**
 * The refusal of an open breaker: `MCP_TX_CIRCUIT_OPEN` (not retryable) with `retryAfterMs`, the
 * time left until it lets a probe through; `name` tells which breaker when there are many.
 *
 * @example
 * throw circuitOpenError(retryAfterMs(openedAt, rules, now), 'pricing');
 */
export function circuitOpenError(retryAfterMs: number, name?: string): TxError {
  const breaker = name === undefined ? 'Circuit breaker' : `Circuit breaker ${name}`;
  return new TxError(TxErrorCode.CircuitOpen, `${breaker} is open; retry after ${retryAfterMs} ms`, {
    retryAfterMs,
  });
}

/**
 * The refusal of a half-open breaker whose `halfOpenMaxCalls` probe slots are all taken:
 * `MCP_TX_CIRCUIT_OPEN` with `retryAfterMs: 0`, since a slot frees as soon as a probe ends.
 *
 * @example
 * if (probesInFlight >= halfOpenMaxCalls) throw probeSlotsTakenError(halfOpenMaxCalls);
 */
export function probeSlotsTakenError(halfOpenMaxCalls: number): TxError {
  return new TxError(
    TxErrorCode.CircuitOpen,
    `Circuit breaker is half-open and its ${halfOpenMaxCalls} probe slot(s) are taken; retry once a probe ends`,
    { retryAfterMs: 0 },
  );
}
