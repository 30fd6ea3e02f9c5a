import type { Subscriber } from 'rxjs';
import type { TxCall } from '../src/call/call.js';
import { onFirstPermit } from '../src/call/firstPermit.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { validationError } from '../src/core/errors.js';
import type { TxResult } from '../src/core/types.js';
import type { Limiter, Permit } from '../src/limiter/limiter.js';

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
  return txOperator('throttle', (call) =>
    call.derive((subscriber) => runWithPermit(limiter, call, subscriber)),
  );
}

/**
 * The first permit runs the call; the permit is released once the call has ended (after the
 * subscriber heard of it) or was left. A permit given at once (a free token) runs the call in the
 * same turn, with no operator in between.
 */
function runWithPermit(limiter: Limiter, call: TxCall, subscriber: Subscriber<TxResult>) {
  return onFirstPermit(limiter, call, subscriber, (permit: Permit) => {
    subscriber.add(() => permit.release());
    call.subscribe(subscriber);
  });
}
