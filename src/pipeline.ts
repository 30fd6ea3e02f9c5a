import type { TxCall } from './call.js';
import {
  DEFAULT_RETRY_POLICY,
  type PartialRetryPolicy,
  parseOrThrow,
  type ResolvedTxConfig,
  type RetryPolicy,
  RetryPolicySchema,
  type ToolPolicy,
  type TxCallOptions,
} from './schemas.js';

/** The policies `call$` applies to one call: config, then the tool's policy, then the call's options. */
export interface CallPolicy {
  readonly retry: RetryPolicy | false;
}

type RetryLayer = PartialRetryPolicy | false | undefined;

/** Merges retry layers over the defaults; `false` on any layer turns retry off. */
export function mergeRetry(...layers: RetryLayer[]): RetryPolicy | false {
  if (layers.includes(false)) return false;
  const merged = Object.assign({}, DEFAULT_RETRY_POLICY, ...layers.filter((layer) => layer !== undefined));
  return parseOrThrow(RetryPolicySchema, merged, 'retry');
}

/** The policy of one call from the three layers that can set it. */
export function resolveCallPolicy(
  config: ResolvedTxConfig,
  tool: ToolPolicy | undefined,
  options: TxCallOptions | undefined,
): CallPolicy {
  return { retry: mergeRetry(config.retry, tool?.retry, options?.retry) };
}

/**
 * The default pipeline (DESIGN §6) around one attempt. The per-attempt timeout is already part of
 * the attempt; the reliability operators are plugged in here.
 */
export function buildPipeline(attempt: TxCall, _policy: CallPolicy): TxCall {
  return attempt;
}
