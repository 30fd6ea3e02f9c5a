import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';

/**
 * How a logical call ended: `completed` (the tool answered without `isError`), `failed` (a tool,
 * network, protocol or store error), `timeout`, `rejected` (refused before or instead of running:
 * validation, open circuit, rate limit, idempotency conflict or key in progress) or `cancelled`.
 *
 * @example
 * const { meta } = await lastValueFrom(tx.call$('search', { q }).pipe(failuresAsResults()));
 * if (meta.status === 'timeout') console.log('slow server');
 */
export type TxStatus = 'completed' | 'failed' | 'timeout' | 'rejected' | 'cancelled';

/**
 * A JSON object: the shape tool arguments must have (plain objects, arrays, strings, finite
 * numbers, booleans and null; see `assertJsonArgs`).
 *
 * @example
 * const args: JsonObject = { city: 'Lyon', days: 3, units: { temperature: 'C' } };
 */
export type JsonObject = { [key: string]: unknown };

/**
 * MCP-Tx metadata of one call, as the caller sees it: on every result, and on the `meta` of the
 * {@link TxError} a failed call ends with. Frozen: operators return new objects.
 *
 * @example
 * const { meta } = await tx.call('charge', { cents: 500 }, { idempotencyKey: 'order-42' });
 * console.log(meta.requestId, meta.attempts, meta.duplicate, meta.status, meta.durationMs);
 */
export interface TxMeta {
  readonly version: string;
  readonly requestId: string;
  readonly transactionId?: string;
  readonly idempotencyKey?: string;
  readonly correlationId?: string;
  readonly tool: string;
  /** Attempts made for this logical call, the one that produced this meta included. */
  readonly attempts: number;
  /** The server received the request (said so in `_meta.mcp_tx`, or answered at all in plain MCP). */
  readonly ack: boolean;
  /** The tool ran to completion (no `isError`). */
  readonly processed: boolean;
  /** The result was served from an idempotency store instead of running the tool again. */
  readonly duplicate: boolean;
  readonly status: TxStatus;
  readonly errorCode?: string;
  /** Sanitized: no secrets, no home paths. */
  readonly errorMessage?: string;
  /** ISO 8601 time the logical call started. */
  readonly startedAt: string;
  readonly durationMs: number;
  readonly serverSupportsTx: boolean;
}

/**
 * What a successful call emits: the SDK's `CallToolResult` as the server sent it, its `data`, and
 * the call's metadata. `data` is the result's `structuredContent`, else its text content parsed as
 * JSON when it is JSON, else the text. Frozen.
 *
 * @example
 * const { result, data, meta } = await tx.call('get_weather', { city: 'Lyon' });
 * console.log(result.content, data, meta.attempts);
 */
export interface TxResult<R = CallToolResult> {
  readonly result: R;
  readonly data: unknown;
  readonly meta: TxMeta;
}

/**
 * Per-attempt transport options, passed through to the SDK; made from the call's
 * {@link TxCallOptions} and read from `call.request.options`.
 *
 * @example
 * const call = tx.attempt$('search', { q: 'rxjs' }, { timeoutMs: 5_000 });
 * console.log(call.request.options.timeoutMs); // 5000
 */
export interface TxAttemptOptions {
  /** Per-attempt timeout (SDK `RequestOptions.timeout`). */
  readonly timeoutMs: number;
  /** Aborting it cancels the call on the wire (`notifications/cancelled`) and ends it as `MCP_TX_CANCELLED`. */
  readonly signal?: AbortSignal;
  /** Called with each progress notification the server sends for the attempt (SDK `onprogress`). */
  readonly onProgress?: (progress: Progress) => void;
  /** A progress notification restarts the timeout (SDK `resetTimeoutOnProgress`; default `false`). */
  readonly resetTimeoutOnProgress?: boolean;
}

/**
 * Everything a call knows about itself; operators downstream read it instead of the user repeating
 * it. Frozen; the same for every attempt of the call.
 *
 * @example
 * const call = tx.call$('charge', { cents: 500 }, { idempotencyKey: 'order-42' });
 * console.log(call.request.name, call.request.requestId, call.request.idempotencyKey);
 */
export interface TxRequest {
  readonly name: string;
  readonly args: JsonObject;
  /** uuid v7, the same on every attempt of the logical call. */
  readonly requestId: string;
  readonly idempotencyKey?: string;
  readonly transactionId?: string;
  readonly correlationId?: string;
  readonly options: TxAttemptOptions;
  /** When the call object was made (ms since the epoch, on the client's scheduler clock). */
  readonly createdAtMs: number;
}
