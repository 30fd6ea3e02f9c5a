import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { errorCodeTraits, isTxErrorCode, TxError, TxErrorCode } from './errors.js';
import type { WireResponseMeta } from './wire.js';

/** JSON-RPC errors that say the request itself is wrong: repeating it cannot help. */
const PERMANENT_RPC_CODES: ReadonlySet<number> = new Set([
  ErrorCode.ParseError,
  ErrorCode.InvalidRequest,
  ErrorCode.MethodNotFound,
  ErrorCode.InvalidParams,
]);

/** The SDK turns protocol errors inside `tools/call` into `isError` results whose text starts like this. */
const EMBEDDED_RPC_ERROR = /^MCP error (-?\d+):/;

/**
 * Does `text` contain one of the retryable markers (case-insensitive)?
 *
 * @example
 * matchesRetryable('TEMPORARY_FAILURE: busy', DEFAULT_RETRYABLE_ERRORS); // true
 */
export function matchesRetryable(text: string, retryableErrors: readonly string[]): boolean {
  const upper = text.toUpperCase();
  return retryableErrors.some((marker) => upper.includes(marker.toUpperCase()));
}

/** The text of a result's text content, joined with newlines. */
export function resultText(content: ReadonlyArray<{ type: string; text?: unknown }> | undefined): string {
  let joined: string | undefined;
  for (const item of content ?? []) {
    if (item.type !== 'text' || typeof item.text !== 'string') continue;
    joined = joined === undefined ? item.text : `${joined}\n${item.text}`;
  }
  return joined ?? '';
}

/**
 * The error codes of the Python MCP-Tx 0.1.0 that are not mcp-tx's, and the code each is read as
 * when a server answers with it in `_meta.mcp_tx.error_code`. Its `MCP_TX_TIMEOUT` and
 * `MCP_TX_NETWORK_ERROR` are mcp-tx codes too, read as such (retryable).
 *
 * - `MCP_TX_ERROR`, `UNKNOWN_ERROR` (what its server answers a tool that raised with): a tool
 *   error, retryable when its text carries a retryable marker (`TEMPORARY_FAILURE: …`).
 * - `MCP_TX_SEQUENCE_ERROR` (a request out of order in a transaction): a protocol error, never
 *   retried — the same request is out of order again.
 */
const PYTHON_ERROR_CODES: Readonly<Record<string, TxErrorCode>> = Object.freeze({
  MCP_TX_ERROR: TxErrorCode.ToolError,
  UNKNOWN_ERROR: TxErrorCode.ToolError,
  MCP_TX_SEQUENCE_ERROR: TxErrorCode.ProtocolError,
});

/** The code a server's `error_code` is read as: an mcp-tx code as it is, a Python one by its table. */
function serverCodeAs(serverCode: string | undefined): TxErrorCode | undefined {
  if (isTxErrorCode(serverCode)) return serverCode;
  return serverCode !== undefined && Object.hasOwn(PYTHON_ERROR_CODES, serverCode)
    ? PYTHON_ERROR_CODES[serverCode]
    : undefined;
}

/** A protocol error the SDK wrapped in an `isError` result that repeating cannot fix (unknown tool, bad arguments). */
function embeddedPermanentRpcError(text: string): TxErrorCode | undefined {
  const rpcCode = EMBEDDED_RPC_ERROR.exec(text)?.[1];
  return rpcCode !== undefined && PERMANENT_RPC_CODES.has(Number(rpcCode))
    ? TxErrorCode.ProtocolError
    : undefined;
}

/**
 * Classifies a `CallToolResult` with `isError: true`. An `error_code` the server answered with
 * decides the code: one of mcp-tx's as it is, one of the Python MCP-Tx's by its table
 * (`MCP_TX_ERROR` and `UNKNOWN_ERROR` → `MCP_TX_TOOL_ERROR`, `MCP_TX_SEQUENCE_ERROR` →
 * `MCP_TX_PROTOCOL_ERROR`), kept as sent in `serverErrorCode`. Without one, a protocol error the SDK
 * wrapped (unknown tool, invalid arguments) is `MCP_TX_PROTOCOL_ERROR`, anything else
 * `MCP_TX_TOOL_ERROR`. A tool error is retryable when its code or text contains one of
 * `retryableErrors`; a protocol error never; another code when a later attempt can get past it
 * (`MCP_TX_TIMEOUT`, `MCP_TX_IN_PROGRESS`…).
 *
 * @example
 * classifyToolError('MCP error -32602: Tool nope not found', undefined, DEFAULT_RETRYABLE_ERRORS).code;
 * // 'MCP_TX_PROTOCOL_ERROR'
 * classifyToolError('TEMPORARY_FAILURE: busy', { error_code: 'UNKNOWN_ERROR' }, DEFAULT_RETRYABLE_ERRORS);
 * // MCP_TX_TOOL_ERROR, retryable, serverErrorCode 'UNKNOWN_ERROR'
 */
export function classifyToolError(
  text: string,
  wire: WireResponseMeta | undefined,
  retryableErrors: readonly string[],
): TxError {
  const message = wire?.error_message ?? (text || 'Tool returned an error');
  const retryAfterMs = typeof wire?.retry_after_ms === 'number' ? wire.retry_after_ms : undefined;
  const serverErrorCode = typeof wire?.error_code === 'string' ? wire.error_code : undefined;
  const code = serverCodeAs(serverErrorCode) ?? embeddedPermanentRpcError(text) ?? TxErrorCode.ToolError;
  const retryable =
    code === TxErrorCode.ToolError
      ? matchesRetryable(`${serverErrorCode ?? ''} ${message} ${text}`, retryableErrors)
      : errorCodeTraits(code).outcomeUnknown; // a code a server reports: can a later attempt get past it?
  return new TxError(code, message, { retryable, retryAfterMs, serverErrorCode });
}

/**
 * Classifies a rejection of `client.callTool`. `aborted` says whether this attempt aborted its own
 * request (the SDK reports an abort and a timeout with the same code, -32001).
 *
 * @example
 * classifyRejection(new McpError(ErrorCode.RequestTimeout, 'timed out'), false).code; // 'MCP_TX_TIMEOUT'
 */
export function classifyRejection(error: unknown, aborted: boolean): TxError {
  if (error instanceof TxError) return error;
  if (aborted) {
    return new TxError(TxErrorCode.Cancelled, 'The call was cancelled', { cause: error });
  }
  if (error instanceof McpError) return classifyMcpError(error);
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Not connected') {
    // Nothing left this process: a retry cannot run the tool twice.
    return new TxError(TxErrorCode.NetworkError, 'Not connected to the MCP server', {
      retryable: true,
      ambiguous: false,
      cause: error,
    });
  }
  if (wasNotSent(error)) {
    // The server refused the connection, or answered that it does not know the session: it did not run the request.
    return new TxError(TxErrorCode.NetworkError, `Not sent to the MCP server: ${message}`, {
      retryable: true,
      ambiguous: false,
      cause: error,
    });
  }
  if (error instanceof Error && error.name === 'ZodError') {
    return new TxError(TxErrorCode.ProtocolError, `Malformed response from server: ${message}`, {
      cause: error,
    });
  }
  return new TxError(TxErrorCode.NetworkError, `Transport error: ${message}`, {
    retryable: true,
    ambiguous: true,
    cause: error,
  });
}

function classifyMcpError(error: McpError): TxError {
  switch (error.code) {
    case ErrorCode.RequestTimeout:
      return new TxError(TxErrorCode.Timeout, error.message, {
        retryable: true,
        ambiguous: true,
        cause: error,
      });
    case ErrorCode.ConnectionClosed:
      return new TxError(TxErrorCode.NetworkError, error.message, {
        retryable: true,
        ambiguous: true,
        cause: error,
      });
    default:
      return new TxError(TxErrorCode.ProtocolError, error.message, {
        retryable: !PERMANENT_RPC_CODES.has(error.code),
        cause: error,
      });
  }
}

/**
 * Whether a Streamable HTTP request was answered `404 Not Found` (the SDK's `StreamableHTTPError`,
 * code 404): the server does not know the session — it expired, or the server restarted — and did
 * not run the request. A new session needs a fresh `initialize`.
 *
 * @example
 * if (isSessionNotFound(error)) console.log('session expired');
 */
export function isSessionNotFound(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === 404 &&
    error.message.startsWith('Streamable HTTP error')
  );
}

/** A request that never reached a server: its session was unknown there, or the connection was refused. */
function wasNotSent(error: unknown): boolean {
  if (isSessionNotFound(error)) return true;
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return cause?.code === 'ECONNREFUSED';
}
