import { catchError, concatMap, defer, from, map, throwError } from 'rxjs';
import * as z from 'zod';
import { withCallMeta } from '../src/call/call.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { parseOrThrow } from '../src/config/validators.js';
import { isTxError, TxError, TxErrorCode, validationError } from '../src/core/errors.js';
import type { TxMeta, TxRequest } from '../src/core/types.js';
import type { EventStore, NewTxEvent } from '../src/events/eventStore.js';

const RecordOptionsSchema = z.strictObject({
  recordArguments: z.boolean().default(false),
});

/**
 * Options of {@link record}:
 *
 * - `recordArguments` (`false`): put the call's arguments in `ToolCallRequested` (they can hold secrets).
 *
 * @example
 * tx.attempt$('search', { q }).pipe(record(events, { recordArguments: true }));
 */
export type RecordOptions = z.input<typeof RecordOptionsSchema>;

/**
 * Writes each call to an event log: `ToolCallRequested` before the call is sent (with its
 * arguments only if `recordArguments`, since they can hold secrets), then `ToolCallCompleted` or
 * `ToolCallFailed` (request id, attempts, duplicate, status, error code, duration) before the caller
 * sees the outcome — so a result the caller has seen is in the log. If the log cannot be written
 * before the call, the call fails and nothing is sent; if it cannot be written after, the caller
 * still gets the outcome and the failure is reported as a process warning.
 *
 * @example
 * const events = new JsonlEventStore('./events.jsonl');
 * tx.attempt$('charge', args, { idempotencyKey: 'order-42' }).pipe(retryWithPolicy(), record(events));
 * events.read$({ type: 'ToolCallFailed' }).subscribe(console.log);
 */
export function record(store: EventStore, options: RecordOptions = {}): TxOperator {
  if (typeof (store as Partial<EventStore> | null)?.append !== 'function') {
    throw validationError('store', 'must be an EventStore');
  }
  const { recordArguments } = parseOrThrow(RecordOptionsSchema, options, 'options');
  return txOperator('record', (call) => {
    const requested = requestedEvent(call.request, recordArguments);
    return call.derive((subscriber) =>
      defer(() => store.append(requested))
        .pipe(
          catchError((error: unknown) => throwError(() => storeUnavailable(error))),
          concatMap(() => call),
          concatMap((result) =>
            from(appendOutcome(store, call.request, result.meta)).pipe(map(() => result)),
          ),
        )
        .subscribe({
          next: (result) => subscriber.next(result),
          complete: () => subscriber.complete(),
          error: (error: unknown) => {
            const failed = withCallMeta(call, error);
            const meta = failed instanceof TxError ? failed.meta : undefined;
            if (meta === undefined) return subscriber.error(failed);
            appendOutcome(store, call.request, meta).then(
              () => subscriber.error(failed),
              () => subscriber.error(failed),
            );
          },
        }),
    );
  });
}

/**
 * The call's error when the log refused its `ToolCallRequested`: retryable (the log may be back on
 * the next try), unless the store's own TxError says it is not (a log that failed to read refuses
 * every append until repaired).
 */
function storeUnavailable(error: unknown): TxError {
  return new TxError(TxErrorCode.StoreUnavailable, `The event log could not be written: ${String(error)}`, {
    retryable: isTxError(error) ? error.retryable : true,
    cause: error,
  });
}

function requestedEvent(request: TxRequest, recordArguments: boolean): NewTxEvent {
  const data: Record<string, unknown> = { idempotencyKey: request.idempotencyKey };
  if (recordArguments) data.arguments = request.args;
  return { type: 'ToolCallRequested', ...ids(request), data };
}

/** Appends the outcome event; a log that fails here is reported, not thrown: the outcome stands. */
async function appendOutcome(store: EventStore, request: TxRequest, meta: TxMeta): Promise<void> {
  const completed = meta.status === 'completed';
  const data: Record<string, unknown> = {
    status: meta.status,
    attempts: meta.attempts,
    duplicate: meta.duplicate,
    durationMs: meta.durationMs,
  };
  if (!completed) Object.assign(data, { errorCode: meta.errorCode, errorMessage: meta.errorMessage });
  try {
    await store.append({ type: completed ? 'ToolCallCompleted' : 'ToolCallFailed', ...ids(request), data });
  } catch (error) {
    globalThis.process?.emitWarning?.(
      `mcp-tx record: could not log the outcome of ${request.requestId}: ${String(error)}`,
    );
  }
}

function ids(request: TxRequest): Pick<NewTxEvent, 'requestId' | 'transactionId' | 'tool'> {
  const base = { requestId: request.requestId, tool: request.name };
  return request.transactionId === undefined ? base : { ...base, transactionId: request.transactionId };
}
