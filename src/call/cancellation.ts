import { TxError, TxErrorCode } from '../core/errors.js';
import { type TxCall, withCallMeta } from './call.js';

/**
 * `call`, failed with `MCP_TX_CANCELLED` (with the call's metadata) as soon as `signal` (the call's
 * own) or `closed` (its McpTx closing) aborts — while an attempt is in flight, and also while the
 * call waits for a rate token or a retry backoff, which the unsubscription then frees. An abort
 * whose `reason` is a `TxError` fails the call with that error; when both have aborted, `signal`
 * says why. The listeners are removed when the call ends.
 *
 * @example
 * const call = cancelledBy(tx.attempt$('search', { q }).pipe(throttle(bucket)), controller.signal);
 */
export function cancelledBy(call: TxCall, signal?: AbortSignal, closed?: AbortSignal): TxCall {
  if (signal === undefined && closed === undefined) return call;
  return call.derive((subscriber) => {
    const onAbort = () => {
      const aborted = signal?.aborted ? signal : closed?.aborted ? closed : undefined;
      if (aborted !== undefined) subscriber.error(withCallMeta(call, cancellation(aborted)));
    };
    if (signal?.aborted || closed?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, ONCE);
    closed?.addEventListener('abort', onAbort, ONCE);
    call.subscribe(subscriber);
    return () => {
      signal?.removeEventListener('abort', onAbort);
      closed?.removeEventListener('abort', onAbort);
    };
  });
}

const ONCE = { once: true } as const;

function cancellation(signal: AbortSignal): TxError {
  if (signal.reason instanceof TxError) return signal.reason;
  return new TxError(TxErrorCode.Cancelled, 'The call was cancelled by its signal');
}
