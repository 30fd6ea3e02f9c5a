import type { Subscriber } from 'rxjs';
import type { Breaker, BreakerPermit } from '../src/breaker/circuitBreaker.js';
import type { TxCall } from '../src/call/call.js';
import { onFirstPermit } from '../src/call/firstPermit.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { validationError } from '../src/core/errors.js';
import type { TxResult } from '../src/core/types.js';

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
  return txOperator('circuitBreak', (call) =>
    call.derive((subscriber) => runWithPermit(breaker, call, subscriber)),
  );
}

/**
 * The first permit runs the call and hears its outcome once; a breaker that admits at once (closed)
 * runs the call in the same turn, with no operator in between.
 */
function runWithPermit(breaker: Breaker, call: TxCall, subscriber: Subscriber<TxResult>) {
  return onFirstPermit(breaker, call, subscriber, (permit: BreakerPermit) => {
    let pending: BreakerPermit | undefined = permit;
    const report = (outcome: (done: BreakerPermit) => void) => {
      const done = pending;
      pending = undefined;
      if (done !== undefined) outcome(done);
    };
    subscriber.add(() => report((done) => done.release()));
    subscriber.add(
      call.subscribe({
        // A call emits one result: that is its success (a consumer may leave right after it).
        next: (result) => {
          report((done) => done.success());
          subscriber.next(result);
        },
        error: (error: unknown) => {
          report((done) => done.failure(error));
          subscriber.error(error);
        },
        complete: () => subscriber.complete(),
      }),
    );
  });
}
