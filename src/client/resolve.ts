/**
 * Where config ⊕ tool policy ⊕ call options become one call: the request every attempt sends, and
 * which stages of the default pipeline it goes through. Each layer is more specific than the one
 * before it; `false` in a tool policy or call options switches a configured operator off.
 */
import type { SchedulerLike } from 'rxjs';
import type { Breaker } from '../breaker/circuitBreaker.js';
import { DEFAULT_RETRYABLE_ERRORS, mergeRetry, type RetryPolicy } from '../config/retryPolicy.js';
import { frozenJsonCopy, isPlainObject } from '../config/toolInput.js';
import { parseOrThrow } from '../config/validators.js';
import { isTxError, TxError, TxErrorCode, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import type { JsonObject, TxRequest } from '../core/types.js';
import type { Limiter } from '../limiter/limiter.js';
import type { ResolvedTxConfig, ToolPolicy, TxCallOptions } from './options.js';
import { TxCallOptionsSchema } from './options.js';

/** The per-tool stages of the default pipeline (inside the retry): what the tool's calls share. */
export interface ToolStageSettings {
  readonly limiter?: Limiter;
  readonly breaker?: Breaker;
  readonly retry: RetryPolicy | false;
}

const SWITCHABLE_STAGES = ['limiter', 'breaker', 'dedupe', 'monitor', 'record', 'trace'] as const;

/** The operators of the default pipeline that a config may turn on and a tool or call may switch off. */
export type SwitchableStage = (typeof SWITCHABLE_STAGES)[number];

/**
 * Whether `options` change which operators a call goes through: a stage switched off, or a retry
 * policy of its own. Most do not (none, an idempotency key, a timeout, a signal): such a call goes
 * through its tool's usual operators.
 */
export function changesOperators(options: TxCallOptions | undefined): boolean {
  if (options === undefined) return false;
  if (options.retry !== undefined) return true;
  for (const stage of SWITCHABLE_STAGES) if (options[stage] === false) return true;
  return false;
}

/**
 * The limiter, breaker and retry policy of a tool's calls: the tool's own limiter or breaker in
 * place of the config's (`false`: none), and the retry layers merged config → tool → call.
 */
export function toolStageSettings(
  config: ResolvedTxConfig,
  policy: ToolPolicy | undefined,
  callRetry: TxCallOptions['retry'],
): ToolStageSettings {
  const limiter = policy?.limiter ?? config.limiter;
  const breaker = policy?.breaker ?? config.breaker;
  return {
    limiter: limiter === false ? undefined : limiter,
    breaker: breaker === false ? undefined : breaker,
    retry: mergeRetry(config.retry, policy?.retry, callRetry),
  };
}

/** The config's retryable error markers (the defaults when retry is off), which classify tool errors. */
export function configuredRetryableErrors(config: ResolvedTxConfig): readonly string[] {
  return config.retry === false
    ? DEFAULT_RETRYABLE_ERRORS
    : (config.retry.retryableErrors ?? DEFAULT_RETRYABLE_ERRORS);
}

/**
 * Whether `stage` stays on for this call: neither the tool policy nor the call options switch it off.
 * (Whether the config has the operator at all is the pipeline's to know.)
 */
export function stageIsOn(
  stage: SwitchableStage,
  policy: ToolPolicy | undefined,
  options: TxCallOptions | undefined,
): boolean {
  return (
    options?.[stage] !== false && (stage === 'limiter' || stage === 'breaker' || policy?.[stage] !== false)
  );
}

/**
 * A call's options checked by zod (none given: undefined). Throws `MCP_TX_VALIDATION` naming the
 * bad field, or `options` when they are not a plain object (a Map, a class instance) or reading
 * them throws (a getter, a proxy).
 */
export function parseCallOptions(options: unknown): TxCallOptions | undefined {
  if (options === undefined) return undefined;
  try {
    if (!isPlainObject(options)) throw validationError('options', 'must be a plain object');
    return keyOnlyOptions(options) ?? parseOrThrow(TxCallOptionsSchema, options, 'options');
  } catch (error) {
    throw asInputError('options', error);
  }
}

/**
 * The commonest options, `{ idempotencyKey }` alone and valid, checked with the key's schema only
 * (the whole schema costs a keyed call several per cent); undefined for any other options, which
 * the whole schema then checks (and names what is wrong).
 */
function keyOnlyOptions(options: JsonObject): TxCallOptions | undefined {
  let keys = 0;
  for (const _ in options) keys += 1;
  if (keys !== 1 || !Object.hasOwn(options, 'idempotencyKey')) return undefined;
  const key = TxCallOptionsSchema.shape.idempotencyKey.safeParse(options.idempotencyKey);
  return key.success && key.data !== undefined ? { idempotencyKey: key.data } : undefined;
}

/**
 * Input checks raise TxErrors; anything else thrown while reading `field` (a getter that throws, a
 * revoked proxy) is bad input too: `MCP_TX_VALIDATION` naming it.
 */
export function asInputError(field: string, error: unknown): TxError {
  if (isTxError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TxError(TxErrorCode.Validation, `Invalid ${field}: could not be read (${reason})`, {
    field,
    cause: error,
  });
}

/**
 * Bytes of a request left for what surrounds its arguments: the JSON-RPC envelope, the tool name
 * (at most 256 characters) and `_meta` with its ids (at most 255 characters each), 3 UTF-8 bytes a
 * character at worst.
 */
const ENVELOPE_BYTES = 8 * 1024;

/**
 * The frozen request every attempt of a call sends: arguments checked and deep-copied in one walk
 * (what every attempt sends, whatever the caller changes afterwards), sized against
 * `config.maxMessageBytes` (with {@link ENVELOPE_BYTES} for the rest), the timeout
 * of the call, else the tool's, else the config's; the call's idempotency key, else the tool's
 * `idempotencyKey(args)`.
 */
export function resolveRequest(
  config: ResolvedTxConfig,
  policy: ToolPolicy | undefined,
  call: { name: string; args: unknown; options: TxCallOptions; scheduler: SchedulerLike },
): TxRequest {
  const { name, options } = call;
  const { copy: args, maxJsonBytes } = frozenJsonCopy(call.args);
  assertFitsMessage(args, maxJsonBytes, config.maxMessageBytes);
  const request: Record<string, unknown> = {
    name,
    args,
    requestId: newRequestId(),
    createdAtMs: call.scheduler.now(),
    options: {
      timeoutMs: options.timeoutMs ?? policy?.timeoutMs ?? config.timeoutMs,
      signal: options.signal,
      onProgress: options.onProgress,
      resetTimeoutOnProgress: options.resetTimeoutOnProgress,
    },
  };
  const idempotencyKey = options.idempotencyKey ?? derivedKey(policy, args);
  if (idempotencyKey !== undefined) request.idempotencyKey = idempotencyKey;
  if (options.transactionId !== undefined) request.transactionId = options.transactionId;
  if (options.correlationId !== undefined) request.correlationId = options.correlationId;
  return Object.freeze(request) as unknown as TxRequest;
}

/**
 * Throws `MCP_TX_VALIDATION` naming `args` when their JSON, as UTF-8, leaves no room for the
 * envelope: refused here, before anything is sent. Measured only when the walk's upper bound
 * (`maxJsonBytes`) says they might not fit.
 */
function assertFitsMessage(args: JsonObject, maxJsonBytes: number, maxMessageBytes: number): void {
  const room = maxMessageBytes - ENVELOPE_BYTES;
  if (maxJsonBytes <= room) return;
  const bytes = new TextEncoder().encode(JSON.stringify(args)).byteLength;
  if (bytes <= room) return;
  throw validationError(
    'args',
    `are ${bytes} bytes of JSON (UTF-8), over the ${room} that maxMessageBytes (${maxMessageBytes}) ` +
      `leaves after ${ENVELOPE_BYTES} for the request envelope: the transport would drop the message`,
  );
}

function derivedKey(policy: ToolPolicy | undefined, args: JsonObject): string | undefined {
  if (policy?.idempotencyKey === undefined) return undefined;
  let key: unknown;
  try {
    key = policy.idempotencyKey(args);
  } catch (error) {
    throw validationError('idempotencyKey', `the tool policy's idempotencyKey(args) threw: ${String(error)}`);
  }
  return parseOrThrow(TxCallOptionsSchema.shape.idempotencyKey, key, 'idempotencyKey');
}
