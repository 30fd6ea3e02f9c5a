import * as z from 'zod';
import { functionSchema, MAX_TIMEOUT_MS, parseOrThrow, TimeoutMsSchema } from './validators.js';

/** How a retry delay is randomised. `true` is MCP-Tx 0.1.0's ±20 %. */
export const JitterSchema = z.union([z.boolean(), z.enum(['full', 'equal', 'none', 'proportional'])], {
  message: "must be a boolean or one of 'full', 'equal', 'none', 'proportional'",
});
/**
 * How a retry delay `d` is randomised: `true` or `'proportional'` ±20 % (MCP-Tx 0.1.0), `'full'`
 * uniform in [0, d], `'equal'` d/2 plus uniform in [0, d/2], `false` or `'none'` exactly d. The
 * result never exceeds `maxDelayMs`.
 *
 * @example
 * const policy: PartialRetryPolicy = { jitter: 'full' }; // AWS-style full jitter
 */
export type Jitter = z.infer<typeof JitterSchema>;

/**
 * MCP-Tx 0.1.0's retryable error markers; a tool error whose text contains one is retried.
 *
 * @example
 * createMcpTx(client, { retry: { retryableErrors: [...DEFAULT_RETRYABLE_ERRORS, 'OVERLOADED'] } });
 */
export const DEFAULT_RETRYABLE_ERRORS: readonly string[] = [
  'CONNECTION_ERROR',
  'TIMEOUT',
  'NETWORK_ERROR',
  'TEMPORARY_FAILURE',
];

const RetryPolicyFields = z.strictObject({
  maxAttempts: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1000),
  baseDelayMs: z.number().min(0, 'must be at least 0').max(MAX_TIMEOUT_MS),
  maxDelayMs: z.number().min(0, 'must be at least 0').max(MAX_TIMEOUT_MS),
  multiplier: z.number().min(1, 'must be at least 1').max(1000),
  jitter: JitterSchema,
  deadlineMs: TimeoutMsSchema.optional(),
  retryableErrors: z.array(z.string().min(1, 'must not be empty')),
  /**
   * Decides alone whether a failure is retried, in place of `retryableErrors`, the codes never
   * retried and the store-outage rule (`attempt`: the attempts made so far, 1 after the first
   * failure). An ambiguous failure it accepts is still retried only when a repeat is safe (see
   * `retryAmbiguous`).
   */
  retryOn: functionSchema<(error: unknown, attempt: number) => boolean>(
    '(error, attempt) => boolean',
  ).optional(),
  retryAmbiguous: z.boolean(),
});

const delaysOrdered = (policy: { baseDelayMs?: number; maxDelayMs?: number }) =>
  policy.baseDelayMs === undefined ||
  policy.maxDelayMs === undefined ||
  policy.maxDelayMs >= policy.baseDelayMs;
const delaysOrderedIssue = { message: 'must be at least baseDelayMs', path: ['maxDelayMs'] };

/**
 * The zod schema of a complete {@link RetryPolicy} (MCP-Tx 0.1.0 bounds).
 *
 * @example
 * const policy = parseOrThrow(RetryPolicySchema, JSON.parse(text), 'retry');
 */
export const RetryPolicySchema = RetryPolicyFields.refine(delaysOrdered, delaysOrderedIssue);
/**
 * A complete retry policy, as {@link mergeRetry} resolves it. Fields (defaults from
 * {@link DEFAULT_RETRY_POLICY}, MCP-Tx 0.1.0's):
 *
 * - `maxAttempts` (3): attempts in all, the first included; 1 to 1000.
 * - `baseDelayMs` (1000): delay before the first retry; each later one is `multiplier` times longer.
 * - `multiplier` (2): growth of the delay per retry, at least 1.
 * - `maxDelayMs` (30000): cap on any one delay, at least `baseDelayMs`.
 * - `jitter` (`true`, ±20 %): see {@link Jitter}.
 * - `deadlineMs` (none): overall time for all attempts and delays; when it passes the call fails
 *   with `MCP_TX_TIMEOUT`, and a retry that would start after it is not made.
 * - `retryableErrors` ({@link DEFAULT_RETRYABLE_ERRORS}): error codes retried, and markers that make
 *   a tool error retryable when its text contains one (case-insensitive). Errors mcp-tx marks
 *   retryable (timeouts, network errors, a server's `MCP_TX_IN_PROGRESS` or
 *   `MCP_TX_STORE_UNAVAILABLE`…) are retried in any case — except a `MCP_TX_STORE_UNAVAILABLE` of
 *   this process (its Redis limiter, breaker or store down or stalled), retried only when listed
 *   here (`[...DEFAULT_RETRYABLE_ERRORS, 'MCP_TX_STORE_UNAVAILABLE']`) or accepted by `retryOn`: by
 *   default a dead Redis fails a call within one `commandTimeoutMs` instead of after every attempt
 *   and backoff.
 * - `retryOn` (none): `(error, attempt) => boolean`, decides alone which failures are retried
 *   (documented on the field).
 * - `retryAmbiguous` (`false`): retry failures that may have run the tool (timeouts, lost
 *   connections) even when the tool is not annotated idempotent and no MCP-Tx server dedupes the key.
 *
 * Validation errors, cancellations, idempotency conflicts, an open circuit and rate limiting are
 * never retried unless `retryOn` says so; a store outage of this process only when the policy names
 * it (above). A server's `retry_after_ms` hint replaces the computed delay.
 *
 * @example
 * const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 5, deadlineMs: 20_000 };
 */
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

/** Some fields of a retry policy, merged over the defaults. */
export const PartialRetryPolicySchema = RetryPolicyFields.partial().refine(delaysOrdered, delaysOrderedIssue);
/**
 * Some fields of a {@link RetryPolicy}; the rest come from the layers under it (config, then tool)
 * and from {@link DEFAULT_RETRY_POLICY}. What `retry` takes in the config, a tool policy, call
 * options and `retryWithPolicy`.
 *
 * @example
 * tx.call('search', { q: 'rxjs' }, { retry: { maxAttempts: 5, baseDelayMs: 200 } });
 */
export type PartialRetryPolicy = z.infer<typeof PartialRetryPolicySchema>;

/**
 * MCP-Tx 0.1.0's defaults: 3 attempts, 1 s base, ×2, 30 s cap, ±20 % jitter, no deadline, the
 * {@link DEFAULT_RETRYABLE_ERRORS}, ambiguous failures not retried. Frozen.
 *
 * @example
 * retryDelay(DEFAULT_RETRY_POLICY, 2); // about 2000 (±20 %)
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 1_000,
  maxDelayMs: 30_000,
  multiplier: 2,
  jitter: true,
  retryableErrors: DEFAULT_RETRYABLE_ERRORS as string[],
  retryAmbiguous: false,
});

/**
 * One layer of retry policy: config, tool or call; `false` turns retry off, `undefined` says nothing.
 *
 * @example
 * const layers: RetryLayer[] = [config.retry, tools.charge?.retry, options.retry];
 * const policy = mergeRetry(...layers);
 */
export type RetryLayer = PartialRetryPolicy | false | undefined;

/**
 * Merges retry layers (config, tool, call: the later is the more specific) over the defaults. The
 * most specific layer that says anything decides whether retry is on: `false` turns it off, a
 * policy object turns it on with the fields of every policy layer merged. The merged policy is
 * validated (a `maxDelayMs` under a `baseDelayMs` set on another layer is an error).
 *
 * @example
 * mergeRetry({ maxAttempts: 5 }, undefined, { baseDelayMs: 100 }); // 5 attempts, 100 ms base, other defaults
 * mergeRetry({}, false, undefined); // false: the tool turned retry off
 */
export function mergeRetry(...layers: RetryLayer[]): RetryPolicy | false {
  const spoken = layers.filter((layer) => layer !== undefined);
  if (spoken.at(-1) === false) return false;
  const merged = Object.assign({}, DEFAULT_RETRY_POLICY, ...spoken.filter((layer) => layer !== false));
  return parseOrThrow(RetryPolicySchema, merged, 'retry');
}

/** What `retry` takes in a config, a tool policy or call options: `false` or a partial policy. */
export const RetryOptionSchema = z.union([z.literal(false), PartialRetryPolicySchema], {
  message: 'must be false or a retry policy object',
});

/** MCP-Tx 0.1.0's jitter: the delay varies by up to this fraction either way. */
export const PROPORTIONAL_JITTER = 0.2;

/**
 * The delay before retry number `retryNumber` (1 for the first retry): `baseDelayMs *
 * multiplier^(retryNumber-1)`, capped at `maxDelayMs`, then randomised per `jitter` — `true` or
 * `'proportional'` ±20 % (MCP-Tx 0.1.0), `'full'` uniform in [0, d], `'equal'` d/2 plus uniform in
 * [0, d/2], `false` or `'none'` exactly d. Never negative, never above `maxDelayMs`.
 *
 * @example
 * retryDelay({ ...DEFAULT_RETRY_POLICY, jitter: false }, 3); // 4000
 */
export function retryDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'multiplier' | 'maxDelayMs' | 'jitter'>,
  retryNumber: number,
  random: () => number = Math.random,
): number {
  const capped = Math.min(policy.maxDelayMs, exponentialDelay(policy, retryNumber));
  return Math.min(policy.maxDelayMs, Math.max(0, jittered(capped, policy.jitter, random)));
}

/** `baseDelayMs * multiplier^(retryNumber-1)`; Infinity when that overflows (a zero base stays 0, not NaN). */
function exponentialDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'multiplier'>,
  retryNumber: number,
): number {
  if (policy.baseDelayMs === 0) return 0;
  return policy.baseDelayMs * policy.multiplier ** Math.max(0, retryNumber - 1);
}

function jittered(delay: number, jitter: RetryPolicy['jitter'], random: () => number): number {
  switch (jitter) {
    case false:
    case 'none':
      return delay;
    case 'full':
      return random() * delay;
    case 'equal':
      return delay / 2 + (random() * delay) / 2;
    default:
      return delay * (1 + PROPORTIONAL_JITTER * (2 * random() - 1));
  }
}
