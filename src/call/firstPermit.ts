import type { Observable, Subscriber, Subscription } from 'rxjs';
import type { TxResult } from '../core/types.js';
import { type TxCall, withCallMeta } from './call.js';

/**
 * What gives permits (a limiter, a breaker): `acquire()` emits them, and the optional `tryAcquire()`
 * hands one over at once when it can (`undefined` when it cannot).
 *
 * @example
 * const gate: PermitSource<Permit> = tokenBucket({ ratePerSecond: 5, burst: 5 });
 */
export interface PermitSource<P> {
  acquire(): Observable<P>;
  tryAcquire?(): P | undefined;
}

/**
 * Hands the first permit `source` gives (a limiter's token, a breaker's admission) to `start`,
 * which runs the call: in the same turn when the permit is given at once — first asked of
 * `tryAcquire()`, then of `acquire()` — with no operator in between. A refusal fails the call with
 * its metadata; leaving before a permit came stops asking (the returned subscription, if any, is
 * the teardown).
 *
 * @example
 * call.derive((subscriber) => onFirstPermit(limiter, call, subscriber, (permit) => {
 *   subscriber.add(() => permit.release());
 *   call.subscribe(subscriber);
 * }));
 */
export function onFirstPermit<P>(
  source: PermitSource<P>,
  call: TxCall,
  subscriber: Subscriber<TxResult>,
  start: (permit: P) => void,
): Subscription | undefined {
  const permit = source.tryAcquire?.();
  if (permit === undefined) return waitForPermit(source.acquire(), call, subscriber, start);
  start(permit);
  return undefined;
}

/** The slow path: subscribes to `permits` and starts the call on the first one. */
function waitForPermit<P>(
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
