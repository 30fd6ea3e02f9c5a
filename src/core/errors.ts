import { sanitizeMessage } from './sanitize.js';
import type { TxMeta, TxStatus } from './types.js';

/**
 * Every error code mcp-tx raises, by name: `TxErrorCode.Timeout` is `'MCP_TX_TIMEOUT'`. The codes
 * are the same on the wire (`_meta.mcp_tx.error_code`) and in a {@link TxError}'s `code`.
 *
 * @example
 * if (isTxError(error, TxErrorCode.Timeout, TxErrorCode.NetworkError)) console.log('transient');
 */
export const TxErrorCode = {
  Timeout: 'MCP_TX_TIMEOUT',
  NetworkError: 'MCP_TX_NETWORK_ERROR',
  ToolError: 'MCP_TX_TOOL_ERROR',
  ProtocolError: 'MCP_TX_PROTOCOL_ERROR',
  CircuitOpen: 'MCP_TX_CIRCUIT_OPEN',
  RateLimited: 'MCP_TX_RATE_LIMITED',
  IdempotencyConflict: 'MCP_TX_IDEMPOTENCY_CONFLICT',
  InProgress: 'MCP_TX_IN_PROGRESS',
  Validation: 'MCP_TX_VALIDATION',
  Cancelled: 'MCP_TX_CANCELLED',
  StoreUnavailable: 'MCP_TX_STORE_UNAVAILABLE',
} as const;

/**
 * One of the {@link TxErrorCode} values, e.g. `'MCP_TX_CIRCUIT_OPEN'`.
 *
 * @example
 * const transient: TxErrorCode[] = [TxErrorCode.Timeout, TxErrorCode.NetworkError];
 */
export type TxErrorCode = (typeof TxErrorCode)[keyof typeof TxErrorCode];

/**
 * What an error code means, in one place; every operator and orchestrator asks these instead of
 * keeping its own list of codes.
 *
 * - `status`: the status a logical call ends with when it fails with the code.
 * - `neverRetried`: repeating the call cannot succeed or would be refused again; only a policy's
 *   `retryOn` may retry it.
 * - `refusal`: refused by a local policy (an open breaker, a full limiter queue) before anything
 *   was sent.
 * - `outcomeUnknown`: the request may have reached the server and run, or be running there; a later
 *   attempt may get past it (how a code a server reports is read, too).
 * - `breakerFailure`: says the server or the network is unwell, so a circuit breaker counts it.
 * - `answered`: the server answered the call itself with a failure (a tool or protocol error): it
 *   did not take effect.
 *
 * @example
 * errorCodeTraits(TxErrorCode.Timeout); // { status: 'timeout', outcomeUnknown: true, breakerFailure: true, … }
 */
export interface ErrorCodeTraits {
  readonly status: TxStatus;
  readonly neverRetried: boolean;
  readonly refusal: boolean;
  readonly outcomeUnknown: boolean;
  readonly breakerFailure: boolean;
  readonly answered: boolean;
}

const traits = (status: TxStatus, ...marks: (keyof Omit<ErrorCodeTraits, 'status'>)[]): ErrorCodeTraits =>
  Object.freeze({
    status,
    neverRetried: marks.includes('neverRetried'),
    refusal: marks.includes('refusal'),
    outcomeUnknown: marks.includes('outcomeUnknown'),
    breakerFailure: marks.includes('breakerFailure'),
    answered: marks.includes('answered'),
  });

const TRAITS_BY_CODE: Readonly<Record<TxErrorCode, ErrorCodeTraits>> = {
  MCP_TX_TIMEOUT: traits('timeout', 'outcomeUnknown', 'breakerFailure'),
  MCP_TX_NETWORK_ERROR: traits('failed', 'outcomeUnknown', 'breakerFailure'),
  MCP_TX_TOOL_ERROR: traits('failed', 'breakerFailure', 'answered'),
  MCP_TX_PROTOCOL_ERROR: traits('failed', 'answered'),
  MCP_TX_CIRCUIT_OPEN: traits('rejected', 'neverRetried', 'refusal'),
  MCP_TX_RATE_LIMITED: traits('rejected', 'neverRetried', 'refusal'),
  MCP_TX_IDEMPOTENCY_CONFLICT: traits('rejected', 'neverRetried'),
  MCP_TX_IN_PROGRESS: traits('rejected', 'outcomeUnknown'),
  MCP_TX_VALIDATION: traits('rejected', 'neverRetried'),
  MCP_TX_CANCELLED: traits('cancelled', 'neverRetried'),
  MCP_TX_STORE_UNAVAILABLE: traits('failed', 'outcomeUnknown'),
};

/**
 * The traits of an error code: see {@link ErrorCodeTraits}.
 *
 * @example
 * if (errorCodeTraits(error.code).refusal) console.log('nothing was sent');
 */
export function errorCodeTraits(code: TxErrorCode): ErrorCodeTraits {
  return TRAITS_BY_CODE[code];
}

/**
 * Whether a string is one of the {@link TxErrorCode} values (a code read off the wire, say).
 *
 * @example
 * isTxErrorCode('MCP_TX_TIMEOUT'); // true
 */
export function isTxErrorCode(code: unknown): code is TxErrorCode {
  return typeof code === 'string' && Object.hasOwn(TRAITS_BY_CODE, code);
}

/**
 * The status a call that failed with `code` ends with.
 *
 * @example
 * statusOf(TxErrorCode.Timeout); // 'timeout'
 */
export function statusOf(code: TxErrorCode): TxStatus {
  return TRAITS_BY_CODE[code].status;
}

/**
 * A failure that says nothing final about the call: it may have run, may run if repeated, or was
 * never sent (refused, cancelled). What an idempotency store must not keep as the key's outcome.
 *
 * @example
 * if (!saysNothingFinal(error)) store.complete(key, print, failureRecord(error), windowMs);
 */
export function saysNothingFinal(error: TxError): boolean {
  const { outcomeUnknown, refusal, status } = TRAITS_BY_CODE[error.code];
  return error.retryable || error.ambiguous || outcomeUnknown || refusal || status === 'cancelled';
}

/**
 * The optional parts of a {@link TxError}, as its constructor takes them.
 *
 * @example
 * new TxError(TxErrorCode.NetworkError, 'socket hang up', { retryable: true, ambiguous: true, cause });
 */
export interface TxErrorOptions {
  /** Whether trying again may help (default `false`). */
  readonly retryable?: boolean;
  /**
   * The request may have reached the server and run there (a timeout, a connection lost after sending).
   * Retrying such a failure is only safe when a repeat can do no harm.
   */
  readonly ambiguous?: boolean;
  /** What the call looked like when it ended. */
  readonly meta?: TxMeta;
  /** The underlying error, kept as the standard `Error.cause`. */
  readonly cause?: unknown;
  /** Where the error concerns one input field or config key, its dotted path. */
  readonly field?: string;
  /** Set on `MCP_TX_CIRCUIT_OPEN` and on server retry-after hints. */
  readonly retryAfterMs?: number;
  /**
   * The `_meta.mcp_tx.error_code` the server answered with, as it sent it (e.g. the Python MCP-Tx's
   * `UNKNOWN_ERROR`, read as `MCP_TX_TOOL_ERROR`).
   */
  readonly serverErrorCode?: string;
}

/**
 * The one error type mcp-tx raises. `code` says what happened, `retryable` whether trying again may
 * help, `meta` what the call looked like when it ended. The message is sanitized.
 *
 * @example
 * tx.call$('charge', { amount: 5 }).subscribe({
 *   error: (e) => {
 *     if (e instanceof TxError && e.code === TxErrorCode.Timeout) console.log(e.meta?.attempts);
 *   },
 * });
 */
export class TxError extends Error {
  override readonly name = 'TxError';
  readonly code: TxErrorCode;
  readonly retryable: boolean;
  readonly ambiguous: boolean;
  readonly meta?: TxMeta;
  readonly field?: string;
  readonly retryAfterMs?: number;
  /** The error code the server answered with, as it sent it (see {@link TxErrorOptions}). */
  readonly serverErrorCode?: string;

  constructor(code: TxErrorCode, message: string, options: TxErrorOptions = {}) {
    super(sanitizeMessage(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.ambiguous = options.ambiguous ?? false;
    if (options.meta !== undefined) this.meta = options.meta;
    if (options.field !== undefined) this.field = options.field;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options.serverErrorCode !== undefined) this.serverErrorCode = options.serverErrorCode;
  }

  /** The same error with other metadata (errors are values; operators do not mutate them). */
  withMeta(meta: TxMeta): TxError {
    return new TxError(this.code, this.message, { ...this.options(), meta });
  }

  /**
   * The same error with another `cause` (e.g. the failure that came before a refusal).
   *
   * @example
   * refusal.withCause(lastFailure); // CIRCUIT_OPEN, caused by the tool error that opened it
   */
  withCause(cause: unknown): TxError {
    return new TxError(this.code, this.message, { ...this.options(), cause });
  }

  /** The same error with other retryability and a reason added to the message. */
  withRetryable(retryable: boolean, reason?: string): TxError {
    const message = reason === undefined ? this.message : `${this.message} (${reason})`;
    return new TxError(this.code, message, { ...this.options(), retryable });
  }

  private options(): TxErrorOptions {
    return {
      retryable: this.retryable,
      ambiguous: this.ambiguous,
      meta: this.meta,
      cause: this.cause,
      field: this.field,
      retryAfterMs: this.retryAfterMs,
      serverErrorCode: this.serverErrorCode,
    };
  }
}

/**
 * A bad input or config value, raised before anything is sent.
 *
 * @example
 * throw validationError('args.amount', 'must be a finite number');
 * // TxError MCP_TX_VALIDATION: Invalid args.amount: must be a finite number
 */
export function validationError(field: string, reason: string): TxError {
  return new TxError(TxErrorCode.Validation, `Invalid ${field}: ${reason}`, { field });
}

/**
 * Is `error` a {@link TxError}, optionally with one of the given codes?
 *
 * @example
 * if (isTxError(e, TxErrorCode.CircuitOpen)) wait(e.retryAfterMs);
 */
export function isTxError(error: unknown, ...codes: TxErrorCode[]): error is TxError {
  return error instanceof TxError && (codes.length === 0 || codes.includes(error.code));
}
