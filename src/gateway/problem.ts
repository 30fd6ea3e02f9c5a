import { STATUS_CODES } from 'node:http';
import { isTxError, type TxError, TxErrorCode } from '../core/errors.js';
import type { TxMeta } from '../core/types.js';

/**
 * A call's MCP-Tx metadata as the gateway answers it (snake_case, like `_meta.mcp_tx` on the wire).
 *
 * @example
 * // { "request_id": "0190…", "attempts": 2, "duplicate": false, "ack": true, "processed": true,
 * //   "status": "completed", "duration_ms": 412, "server_supports_tx": true }
 */
export interface GatewayMetadata {
  readonly request_id: string;
  readonly idempotency_key?: string;
  readonly attempts: number;
  readonly duplicate: boolean;
  readonly ack: boolean;
  readonly processed: boolean;
  readonly status: TxMeta['status'];
  readonly duration_ms: number;
  readonly server_supports_tx: boolean;
}

/**
 * An RFC 9457 problem details object, as every gateway error is answered (`application/problem+json`).
 * `type` is `about:blank` and `title` the HTTP status phrase; `code` says what happened (a
 * `TxErrorCode`, or a `GATEWAY_*` code for HTTP-level refusals), `field` which input was wrong, and
 * `metadata` what the call looked like when it ended, when it got that far. Never a stack trace.
 *
 * @example
 * // 422 application/problem+json
 * // { "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
 * //   "detail": "Idempotency key \"order-42\" was already used for charge with other arguments",
 * //   "code": "MCP_TX_IDEMPOTENCY_CONFLICT" }
 */
export interface ProblemDetails {
  readonly type: 'about:blank';
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly field?: string;
  readonly metadata?: GatewayMetadata;
}

/**
 * Codes of the refusals the gateway makes itself, before a call exists: 401, 404, 405, 413, 415,
 * 503 while shutting down, and a 500 for an error that is not a {@link TxError}.
 *
 * @example
 * if (problem.code === GatewayErrorCode.Unauthorized) await refreshToken();
 */
export const GatewayErrorCode = {
  Unauthorized: 'GATEWAY_UNAUTHORIZED',
  NotFound: 'GATEWAY_NOT_FOUND',
  MethodNotAllowed: 'GATEWAY_METHOD_NOT_ALLOWED',
  PayloadTooLarge: 'GATEWAY_PAYLOAD_TOO_LARGE',
  UnsupportedMediaType: 'GATEWAY_UNSUPPORTED_MEDIA_TYPE',
  ShuttingDown: 'GATEWAY_SHUTTING_DOWN',
  Internal: 'GATEWAY_INTERNAL_ERROR',
} as const;

const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * The HTTP status of a call that failed with each code. `POST /execute-tool` answers a tool error
 * (the tool ran and said `isError`) 200 with `success: false`; 502 is for other uses of {@link problemFor}.
 */
const HTTP_STATUS_BY_CODE: Readonly<Record<TxErrorCode, number>> = {
  MCP_TX_VALIDATION: 400,
  MCP_TX_IN_PROGRESS: 409,
  MCP_TX_IDEMPOTENCY_CONFLICT: 422,
  MCP_TX_RATE_LIMITED: 429,
  MCP_TX_NETWORK_ERROR: 502,
  MCP_TX_PROTOCOL_ERROR: 502,
  MCP_TX_TOOL_ERROR: 502,
  MCP_TX_CIRCUIT_OPEN: 503,
  MCP_TX_CANCELLED: 503,
  MCP_TX_STORE_UNAVAILABLE: 503,
  MCP_TX_TIMEOUT: 504,
};

/**
 * The MCP server refused the call's input before the tool ran: -32601 method not found, or -32602
 * for an unknown or disabled tool or invalid arguments. Not a -32602 about the tool's output (the
 * SDK's "Output validation error", or its client's "Structured content does not match the tool's
 * output schema"): the tool ran, and the fault is upstream.
 */
const REFUSED_INPUT =
  /^MCP error (-32601:|-32602: (Tool \S+ (not found|disabled)|Input validation error|Invalid arguments))/;

/** Statuses that tell the client when to come back. */
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * The snake_case metadata of a call, for a gateway answer.
 *
 * @example
 * const { result, meta } = await tx.call('get_stock', { item: 'apple' });
 * gatewayMetadata(meta); // { request_id: '0190…', attempts: 1, duplicate: false, … }
 */
export function gatewayMetadata(meta: TxMeta): GatewayMetadata {
  return {
    request_id: meta.requestId,
    ...(meta.idempotencyKey === undefined ? {} : { idempotency_key: meta.idempotencyKey }),
    attempts: meta.attempts,
    duplicate: meta.duplicate,
    ack: meta.ack,
    processed: meta.processed,
    status: meta.status,
    duration_ms: meta.durationMs,
    server_supports_tx: meta.serverSupportsTx,
  };
}

/**
 * The HTTP status a failed call is answered with: validation 400, in progress 409, idempotency
 * conflict 422, rate limited 429, network, protocol or tool error 502 (but 400 when the MCP server
 * refused the call's input: unknown tool, invalid arguments), circuit open, cancelled or store
 * unavailable 503, timeout 504.
 *
 * @example
 * httpStatusOf(new TxError(TxErrorCode.IdempotencyConflict, 'key reused')); // 422
 */
export function httpStatusOf(error: TxError): number {
  if (error.code === TxErrorCode.ProtocolError && REFUSED_INPUT.test(error.message)) return 400;
  return HTTP_STATUS_BY_CODE[error.code];
}

/**
 * An `application/problem+json` response. 429 and 503 carry `Retry-After` (whole seconds,
 * `retryAfterMs` rounded up, 1 when unknown).
 *
 * @example
 * return problemResponse(401, GatewayErrorCode.Unauthorized, 'Missing or invalid credentials');
 */
export function problemResponse(
  status: number,
  code: string,
  detail: string,
  extra: { field?: string; meta?: TxMeta; retryAfterMs?: number; headers?: Record<string, string> } = {},
): Response {
  const problem: ProblemDetails = {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(extra.field === undefined ? {} : { field: extra.field }),
    ...(extra.meta === undefined ? {} : { metadata: gatewayMetadata(extra.meta) }),
  };
  const headers: Record<string, string> = { 'Content-Type': PROBLEM_CONTENT_TYPE, ...extra.headers };
  if (RETRY_AFTER_STATUSES.has(status))
    headers['Retry-After'] = String(Math.max(1, Math.ceil((extra.retryAfterMs ?? 1_000) / 1_000)));
  return new Response(JSON.stringify(problem), { status, headers });
}

/**
 * The problem response for anything a request failed with: a {@link TxError} by its code (its message
 * is already sanitized), anything else a bare 500 that says nothing of the error.
 *
 * @example
 * app.onError((error) => problemFor(error));
 */
export function problemFor(error: unknown): Response {
  if (!isTxError(error)) {
    return problemResponse(500, GatewayErrorCode.Internal, 'The gateway could not handle the request');
  }
  return problemResponse(httpStatusOf(error), error.code, error.message, {
    field: error.field,
    meta: error.meta,
    retryAfterMs: error.retryAfterMs,
  });
}
