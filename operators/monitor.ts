import { tap } from 'rxjs';
import { withCallMeta } from '../src/call/call.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { TxError, TxErrorCode, validationError } from '../src/core/errors.js';
import type { HealthMonitor } from '../src/health/healthMonitor.js';

/**
 * Reports every call's outcome — its result's or its error's metadata — to a
 * {@link HealthMonitor}. A call the caller cancelled is not an outcome and is not counted. Put it
 * outside `retryWithPolicy` and `dedupe` to count logical calls (with their attempts and
 * duplicates).
 *
 * @example
 * const health = new HealthMonitor();
 * tx.attempt$('search', { q }).pipe(retryWithPolicy(), dedupe(store), monitor(health));
 */
export function monitor(health: HealthMonitor): TxOperator {
  if (typeof (health as Partial<HealthMonitor> | null)?.record !== 'function') {
    throw validationError('health', 'must be a HealthMonitor');
  }
  return txOperator('monitor', (call) => {
    return call.pipe(
      tap({
        next: (result) => health.record(result.meta),
        error: (error: unknown) => {
          const failed = withCallMeta(call, error);
          if (failed instanceof TxError && failed.code !== TxErrorCode.Cancelled && failed.meta) {
            health.record(failed.meta);
          }
        },
      }),
    );
  });
}
