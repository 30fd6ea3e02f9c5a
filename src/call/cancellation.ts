import { TxError, TxErrorCode } from '../core/errors.js';
import { type TxCall, withCallMeta } from './call.js';

/**
 * `call`, failed with `MCP_TX_CANCELLED` (with the call's metadata) as soon as one of `signals`
 * aborts — while an attempt is in flight, and also while the call waits for a rate token or a retry
 * backoff, which the unsubscription then frees. An abort whose `reason` is a `TxError` fails the
 * call with that error. The listeners are removed when the call ends.
 *
 * @example
 * const call = cancelledBy(tx.attempt$('search', { q }).pipe(throttle(bucket)), [controller.signal]);
 */
export function cancelledBy(call: TxCall, signals: readonly (AbortSignal | undefined)[]): TxCall {
  const watched = signals.filter((signal): signal is AbortSignal => signal !== undefined);
  if (watched.length === 0) return call;
  return call.derive((subscriber) => {
    // One listener for every signal: the first aborted one says why.
    const onAbort = () => {
      const aborted = watched.find((signal) => signal.aborted);
      if (aborted !== undefined) subscriber.error(withCallMeta(call, cancellation(aborted)));
    };
    if (watched.some((signal) => signal.aborted)) {
      onAbort();
      return;
    }
    for (const signal of watched) signal.addEventListener('abort', onAbort, ONCE);
    call.subscribe(subscriber);
    return () => {
      for (const signal of watched) signal.removeEventListener('abort', onAbort);
    };
  });
}

const ONCE = { once: true } as const;

function cancellation(signal: AbortSignal): TxError {
  if (signal.reason instanceof TxError) return signal.reason;
  return new TxError(TxErrorCode.Cancelled, 'The call was cancelled by its signal');
}
