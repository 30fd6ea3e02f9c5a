/**
 * Where config ⊕ tool policy ⊕ call options become one call: the request every attempt sends, and
 * which stages of the default pipeline it goes through. Each layer is more specific than the one
 * before it; `false` in a tool policy or call options switches a configured operator off.
 */
import type { SchedulerLike } from 'rxjs';
import type { Breaker } from '../breaker/circuitBreaker.js';
import { DEFAULT_RETRYABLE_ERRORS, mergeRetry, type RetryPolicy } from '../config/retryPolicy.js';
import { assertJsonArgs } from '../config/toolInput.js';
import { parseOrThrow } from '../config/validators.js';
import { validationError } from '../core/errors.js';
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

/** The operators of the default pipeline that a config may turn on and a tool or call may switch off. */
export type SwitchableStage = 'limiter' | 'breaker' | 'dedupe' | 'monitor' | 'record' | 'trace';

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
 * The frozen request every attempt of a call sends: arguments checked and deep-copied, the timeout
 * of the call, else the tool's, else the config's; the call's idempotency key, else the tool's
 * `idempotencyKey(args)`.
 */
export function resolveRequest(
  config: ResolvedTxConfig,
  policy: ToolPolicy | undefined,
  call: { name: string; args: unknown; options: TxCallOptions; scheduler: SchedulerLike },
): TxRequest {
  const { name, options } = call;
  assertJsonArgs(call.args);
  const args = frozenCopy(call.args);
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
 * A deep frozen copy of arguments already checked to be plain JSON (so the JSON round trip keeps all
 * the wire would carry): what every attempt of the call sends, whatever the caller changes afterwards.
 */
function frozenCopy(args: JsonObject): JsonObject {
  return deepFreeze(JSON.parse(JSON.stringify(args)) as JsonObject);
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  for (const item of Object.values(value)) deepFreeze(item);
  return Object.freeze(value);
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
