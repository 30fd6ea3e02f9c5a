import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';

/** How a logical call ended. */
export type TxStatus = 'completed' | 'failed' | 'timeout' | 'rejected' | 'cancelled';

/** A JSON object: the shape tool arguments must have. */
export type JsonObject = { [key: string]: unknown };

/**
 * MCP-Tx metadata of one call, as the caller sees it. Frozen: operators return new objects.
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
 * What a successful call emits.
 * `data` is the result's `structuredContent`, else its text content parsed as JSON when it is JSON,
 * else the text.
 */
export interface TxResult<R = CallToolResult> {
  readonly result: R;
  readonly data: unknown;
  readonly meta: TxMeta;
}

/** Per-attempt transport options, passed through to the SDK. */
export interface TxAttemptOptions {
  /** Per-attempt timeout (SDK `RequestOptions.timeout`). */
  readonly timeoutMs: number;
  /** Aborting it cancels the call on the wire (`notifications/cancelled`) and ends it as `MCP_TX_CANCELLED`. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: Progress) => void;
  readonly resetTimeoutOnProgress?: boolean;
}

/** Everything a call knows about itself; operators downstream read it instead of the user repeating it. */
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
