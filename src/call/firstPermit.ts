import type { Observable, Subscriber, Subscription } from 'rxjs';
import type { TxResult } from '../core/types.js';
import { type TxCall, withCallMeta } from './call.js';

/**
 * Waits for the first permit `permits` gives (a limiter's token, a breaker's admission) and hands it
 * to `start`, which runs the call: in the same turn when the permit is given at once, with no
 * operator in between. A refusal fails the call with its metadata; leaving before a permit came
 * stops asking (the returned subscription is the teardown).
 *
 * @example
 * call.derive((subscriber) => onFirstPermit(limiter.acquire(), call, subscriber, (permit) => {
 *   subscriber.add(() => permit.release());
 *   call.subscribe(subscriber);
 * }));
 */
export function onFirstPermit<P>(
  permits: Observable<P>,
  call: TxCall,
  subscriber: Subscriber<TxResult>,
  start: (permit: P) => void,
): Subscription {
  let granted = false;
  const waiting = permits.subscribe({
    next: (permit) => {
      if (granted) return;
      granted = true;
      start(permit);
    },
    error: (error: unknown) => {
      if (!granted) subscriber.error(withCallMeta(call, error));
    },
    complete: () => {
      if (!granted) subscriber.complete();
    },
  });
  if (granted) waiting.unsubscribe();
  return waiting;
}
