import { catchError, finalize, switchMap, take, tap, throwError } from 'rxjs';
import type { Breaker, BreakerPermit } from '../src/breaker/circuitBreaker.js';
import { withCallMeta } from '../src/call/call.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { validationError } from '../src/core/errors.js';

/**
 * Asks the breaker before each subscription of the source: a refusal fails the call at once with
 * `MCP_TX_CIRCUIT_OPEN` (and `retryAfterMs`) without subscribing the source; otherwise the call's
 * outcome is reported to the breaker exactly once — success at its result, failure (counted if the
 * breaker says it counts) at its error, release when it is unsubscribed before either. Inside
 * `retryWithPolicy` every attempt counts.
 *
 * @example
 * const breaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeoutMs: 30_000 });
 * tx.attempt$('quote', { symbol }).pipe(circuitBreak(breaker), retryWithPolicy());
 */
export function circuitBreak(breaker: Breaker): TxOperator {
  if (typeof (breaker as Partial<Breaker> | null)?.acquire !== 'function') {
    throw validationError('breaker', 'must be a Breaker (new CircuitBreaker(...))');
  }
  return txOperator('circuitBreak', (call) => {
    return call.derive((subscriber) => {
      let permit: BreakerPermit | undefined;
      const report = (outcome: (granted: BreakerPermit) => void) => {
        const granted = permit;
        permit = undefined;
        if (granted !== undefined) outcome(granted);
      };
      return breaker
        .acquire()
        .pipe(
          take(1),
          catchError((error: unknown) => throwError(() => withCallMeta(call, error))),
          switchMap((granted) => {
            permit = granted;
            // A call emits one result: that is its success (a consumer may leave right after it).
            return call.pipe(
              tap({
                next: () => report((done) => done.success()),
                error: (error: unknown) => report((done) => done.failure(error)),
              }),
            );
          }),
          finalize(() => report((done) => done.release())),
        )
        .subscribe(subscriber);
    });
  });
}
