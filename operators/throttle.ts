import { catchError, finalize, switchMap, take, throwError } from 'rxjs';
import { withCallMeta } from '../src/call/call.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { validationError } from '../src/core/errors.js';
import type { Limiter } from '../src/limiter/limiter.js';

/**
 * Waits for the limiter's leave before each subscription of the source, and gives it back when the
 * source ends (completes, fails or is unsubscribed). Never drops a call: a full queue fails it with
 * `MCP_TX_RATE_LIMITED`. Inside `retryWithPolicy` every attempt waits for its own turn.
 *
 * @example
 * const limiter = tokenBucket({ ratePerSecond: 20, burst: 10 });
 * tx.attempt$('search', { q }).pipe(throttle(limiter), retryWithPolicy());
 */
export function throttle(limiter: Limiter): TxOperator {
  if (typeof (limiter as Partial<Limiter> | null)?.acquire !== 'function') {
    throw validationError('limiter', 'must be a Limiter (tokenBucket(...), concurrencyLimit(...))');
  }
  return txOperator('throttle', (call) => {
    return call.derive((subscriber) =>
      limiter
        .acquire()
        .pipe(
          take(1),
          catchError((error: unknown) => throwError(() => withCallMeta(call, error))),
          switchMap((permit) => call.pipe(finalize(() => permit.release()))),
        )
        .subscribe(subscriber),
    );
  });
}
