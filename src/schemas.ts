import type { Tracer } from '@opentelemetry/api';
import type { SchedulerLike } from 'rxjs';
import { z } from 'zod';
import type { Breaker } from './breaker/circuitBreaker.js';
import { validationError } from './errors.js';
import type { EventStore } from './events/eventStore.js';
import type { HealthMonitor } from './health/healthMonitor.js';
import type { IdempotencyStore } from './idempotency/store.js';
import type { Limiter } from './limiter/limiter.js';
import type { JsonObject } from './types.js';

/** Longest idempotency key, transaction id or correlation id accepted. */
export const MAX_KEY_LENGTH = 255;
/** Longest timeout a Node timer can hold. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** An RxJS scheduler: what every operator or class that waits takes, for virtual time in tests. */
export const SchedulerSchema = z.custom<SchedulerLike>(
  (value) => typeof (value as SchedulerLike | null)?.now === 'function',
  'must be an RxJS scheduler',
);

/** How many calls may wait in a limiter's queue (default: no bound). */
export const MaxQueueSchema = z
  .number()
  .int('must be a whole number')
  .min(0, 'must be at least 0')
  .or(z.literal(Infinity))
  .default(Infinity);

/** A positive whole number of milliseconds. */
export const PositiveMsSchema = z
  .number()
  .int('must be a whole number of milliseconds')
  .positive('must be greater than 0');

/**
 * How a call waits for an idempotency key that another request holds: the in-progress record's TTL
 * (so a crashed holder does not block the key forever) and how long and how often to look again.
 */
export const InProgressOptionsSchema = (pollMs: number) => ({
  inProgressTtlMs: PositiveMsSchema.default(120_000),
  inProgress: z
    .strictObject({ waitMs: z.number().int().min(0, 'must be at least 0'), pollMs: PositiveMsSchema })
    .default({ waitMs: 30_000, pollMs }),
});

const fn = <T extends (...args: never[]) => unknown>(what: string) =>
  z.custom<T>((value) => typeof value === 'function', { message: `must be a function (${what})` });

/** A wait in ms that may be 0: a whole number from 0 to {@link MAX_TIMEOUT_MS}. */
export const WaitMsSchema = z
  .number({ message: 'must be a number of milliseconds' })
  .int('must be a whole number of milliseconds')
  .min(0, 'must be at least 0')
  .max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS}`);

/** A timeout or period in ms: a whole number from 1 to {@link MAX_TIMEOUT_MS} (what `setTimeout` takes). */
export const TimeoutMsSchema = z
  .number({ message: 'must be a number of milliseconds' })
  .int('must be a whole number of milliseconds')
  .positive('must be greater than 0')
  .max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS}`);

const boundedId = z
  .string({ message: 'must be a string' })
  .min(1, 'must not be empty')
  .max(MAX_KEY_LENGTH, `must be at most ${MAX_KEY_LENGTH} characters`);

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
   * Decides alone whether a failure is retried, in place of `retryableErrors` and the codes never
   * retried (`attempt`: the attempts made so far, 1 after the first failure). An ambiguous failure
   * it accepts is still retried only when a repeat is safe (see `retryAmbiguous`).
   */
  retryOn: fn<(error: unknown, attempt: number) => boolean>('(error, attempt) => boolean').optional(),
  /** Retry ambiguous failures (timeouts, lost connections) even when a repeat might run the tool twice. */
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
 *   retryable (timeouts, network errors, an unavailable store…) are retried in any case.
 * - `retryOn` (none): `(error, attempt) => boolean`, decides alone which failures are retried.
 * - `retryAmbiguous` (`false`): retry failures that may have run the tool (timeouts, lost
 *   connections) even when the tool is not annotated idempotent and no MCP-Tx server dedupes the key.
 *
 * Validation errors, cancellations, idempotency conflicts, an open circuit and rate limiting are
 * never retried unless `retryOn` says so. A server's `retry_after_ms` hint replaces the
 * computed delay.
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

const RetryOption = z.union([z.literal(false), PartialRetryPolicySchema], {
  message: 'must be false or a retry policy object',
});

const hasMethod = (value: unknown, method: string) =>
  typeof (value as Record<string, unknown> | null)?.[method] === 'function';
const LimiterSchema = z.custom<Limiter>(
  (value) => hasMethod(value, 'acquire'),
  'must be a Limiter (tokenBucket(...), concurrencyLimit(...))',
);
const BreakerSchema = z.custom<Breaker>(
  (value) => hasMethod(value, 'acquire'),
  'must be a Breaker (new CircuitBreaker(...))',
);
const HealthMonitorSchema = z.custom<HealthMonitor>(
  (value) => hasMethod(value, 'record'),
  'must be a HealthMonitor',
);
const EventStoreSchema = z.custom<EventStore>((value) => hasMethod(value, 'append'), 'must be an EventStore');
const StoreSchema = z.custom<IdempotencyStore>(
  (value) => hasMethod(value, 'begin') && hasMethod(value, 'complete') && hasMethod(value, 'release'),
  'must be an IdempotencyStore',
);
const orOff = <T extends z.ZodType>(schema: T, what: string) =>
  z.union([z.literal(false), schema], { message: `must be false or ${what}` });
/** `false` turns an operator of the default pipeline off for a tool or a call. */
const Off = z.literal(false, { message: 'can only be false (off)' });

/** Options of the `trace` operator (and of `trace` in the config). */
export const TraceOptionsSchema = z.strictObject({
  tracer: z
    .custom<Tracer>((value) => hasMethod(value, 'startSpan'), 'must be an OpenTelemetry Tracer')
    .optional(),
  tracerName: z.string().min(1, 'must not be empty').default('mcp-tx'),
  /** Record the call's arguments on the span (sanitized, capped): off by default, they can hold secrets. */
  recordArguments: z.boolean().default(false),
});
/**
 * Options of the `trace` operator, and `trace` in {@link TxConfig} (`true` means all defaults):
 *
 * - `tracer` (none): the OpenTelemetry `Tracer` spans are made with; without one, the global
 *   provider's tracer named `tracerName`.
 * - `tracerName` (`'mcp-tx'`): the name of that global tracer.
 * - `recordArguments` (`false`): put the call's arguments on the span as
 *   `gen_ai.tool.call.arguments`, secrets redacted and capped at 4096 characters.
 *
 * @example
 * const tx = createMcpTx(client, { trace: { tracer: provider.getTracer('agent'), recordArguments: true } });
 */
export type TraceOptions = z.input<typeof TraceOptionsSchema>;

/** Per-tool policy registered with `tx.tool(name, policy)`; `false` turns a configured operator off. */
export const ToolPolicySchema = z.strictObject({
  retry: RetryOption.optional(),
  timeoutMs: TimeoutMsSchema.optional(),
  /**
   * Derives the idempotency key of a call that does not pass one from its arguments. A function that
   * throws or returns a bad key (not a string of 1 to 255 characters) fails the call with
   * `MCP_TX_VALIDATION` before anything is sent.
   */
  idempotencyKey: fn<(args: JsonObject) => string>('(args) => string').optional(),
  limiter: orOff(LimiterSchema, 'a Limiter').optional(),
  breaker: orOff(BreakerSchema, 'a Breaker').optional(),
  dedupe: Off.optional(),
  monitor: Off.optional(),
  record: Off.optional(),
  trace: Off.optional(),
});
/**
 * The policy of one tool, from `tx.tool(name, policy)` or the config's `tools`. Every field is
 * optional; an unset one leaves the config's:
 *
 * - `retry`: a {@link PartialRetryPolicy} merged over the config's, or `false` for no retry.
 * - `timeoutMs`: the per-attempt timeout of this tool's calls (1 to 2147483647 ms).
 * - `idempotencyKey`: `(args) => string`, the key of a call that does not pass one.
 * - `limiter` / `breaker`: a `Limiter` / `Breaker` for this tool in place of the config's, or
 *   `false` for none.
 * - `dedupe`, `monitor`, `record`, `trace`: `false` leaves that operator of the config out.
 *
 * `timeoutMs` and `idempotencyKey` apply to `tx.attempt$` too; the rest shape `tx.call$`'s pipeline.
 *
 * @example
 * tx.tool('charge', {
 *   retry: { maxAttempts: 5 },
 *   timeoutMs: 10_000,
 *   idempotencyKey: (args) => `charge-${String(args.orderId)}`,
 *   breaker: new CircuitBreaker({ failureThreshold: 3 }),
 * });
 */
export type ToolPolicy = z.infer<typeof ToolPolicySchema>;

/** Options of one `call$` / `attempt$`. */
export const TxCallOptionsSchema = z.strictObject({
  idempotencyKey: boundedId.optional(),
  timeoutMs: TimeoutMsSchema.optional(),
  retry: RetryOption.optional(),
  transactionId: boundedId.optional(),
  correlationId: boundedId.optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal').optional(),
  /** Called with each progress notification the server sends: `{ progress, total?, message? }`. */
  onProgress:
    fn<(progress: { progress: number; total?: number; message?: string }) => void>(
      '(progress) => void',
    ).optional(),
  resetTimeoutOnProgress: z.boolean().optional(),
  limiter: Off.optional(),
  breaker: Off.optional(),
  dedupe: Off.optional(),
  monitor: Off.optional(),
  record: Off.optional(),
  trace: Off.optional(),
});
/**
 * Options of one `tx.call$` / `tx.call` / `tx.attempt$`. Every field is optional:
 *
 * - `idempotencyKey` (the tool policy's `idempotencyKey(args)`, else none): 1 to 255 characters;
 *   `dedupe` and an MCP-Tx server (`txTool`) run the call once per key (scoped by tool).
 * - `timeoutMs` (the tool policy's, else the config's, 30 000): the timeout of each attempt.
 * - `retry`: a {@link PartialRetryPolicy} merged over the config's and the tool's, or `false` for
 *   no retry.
 * - `transactionId`, `correlationId` (none): 1 to 255 characters, sent in `_meta.mcp_tx` and kept
 *   in the result's `meta`.
 * - `signal`: aborting it cancels the call on the wire (`notifications/cancelled`); the call fails
 *   with `MCP_TX_CANCELLED` and is not retried.
 * - `onProgress`: called with the server's progress notifications for the call.
 * - `resetTimeoutOnProgress` (`false`): a progress notification restarts the attempt's timeout.
 * - `limiter`, `breaker`, `dedupe`, `monitor`, `record`, `trace`: `false` leaves that operator out
 *   of this call's pipeline.
 *
 * `tx.attempt$` has no pipeline: it ignores `retry` and the operator switches.
 *
 * @example
 * const controller = new AbortController();
 * await tx.call('export_report', { month: '2026-01' }, {
 *   idempotencyKey: 'report-2026-01',
 *   timeoutMs: 120_000,
 *   signal: controller.signal,
 *   onProgress: ({ progress, total }) => console.log(`${progress}/${total ?? '?'}`),
 *   resetTimeoutOnProgress: true,
 * });
 */
export type TxCallOptions = z.infer<typeof TxCallOptionsSchema>;

const DedupeConfigSchema = z.strictObject({
  windowMs: TimeoutMsSchema.optional(),
  maxEntries: z.number().int().positive().max(100_000_000).optional(),
  store: StoreSchema.optional(),
});

/**
 * The zod schema of {@link TxConfig}: `createMcpTx` parses its config with it, filling in the defaults.
 *
 * @example
 * const resolved = parseOrThrow(TxConfigSchema, { timeoutMs: 5_000 }, 'config');
 * resolved.closeTimeoutMs; // 30000
 */
export const TxConfigSchema = z.strictObject({
  timeoutMs: TimeoutMsSchema.default(30_000),
  retry: RetryOption.default({}),
  dedupe: orOff(DedupeConfigSchema, 'a dedupe config object').default({}),
  limiter: LimiterSchema.optional(),
  breaker: BreakerSchema.optional(),
  monitor: HealthMonitorSchema.optional(),
  events: EventStoreSchema.optional(),
  trace: z
    .union([z.boolean(), TraceOptionsSchema], { message: 'must be a boolean or trace options' })
    .default(false),
  closeTimeoutMs: TimeoutMsSchema.default(30_000),
  tools: z.record(z.string(), ToolPolicySchema).default({}),
  scheduler: SchedulerSchema.optional(),
});
/**
 * The configuration of {@link createMcpTx}. Every field is optional:
 *
 * - `timeoutMs` (30 000): the per-attempt timeout, unless a tool or call sets its own.
 * - `retry` (`{}`, i.e. {@link DEFAULT_RETRY_POLICY}: 3 attempts, 1 s base, ×2, 30 s cap, ±20 %
 *   jitter): a {@link PartialRetryPolicy} merged over the defaults, or `false` for no retry.
 * - `dedupe` (`{}`): `{ windowMs?, maxEntries?, store? }` for the calls that carry an idempotency
 *   key — by default an in-memory store keeping results 300 000 ms, at most 10 000 keys; `store`
 *   replaces it (a shared `redisIdempotencyStore`, say). `false` turns deduplication off.
 * - `limiter` (none): a `Limiter` every call waits for, attempt by attempt (`tokenBucket`,
 *   `concurrencyLimit`, `redisRateLimiter`).
 * - `breaker` (none): a `Breaker` every attempt asks (`CircuitBreaker`, `RedisCircuitBreaker`).
 * - `monitor` (none): a `HealthMonitor` told the outcome of every logical call.
 * - `events` (none): an `EventStore` every call is recorded in (`ToolCallRequested`,
 *   `ToolCallCompleted`, `ToolCallFailed`).
 * - `trace` (`false`): `true` or {@link TraceOptions} for one OpenTelemetry span per logical call.
 * - `closeTimeoutMs` (30 000): how long `tx.close()` waits for calls in flight before cancelling them.
 * - `tools` (`{}`): a {@link ToolPolicy} per tool name, as `tx.tool(name, policy)` registers.
 * - `scheduler` (`asyncScheduler`): the RxJS scheduler for timers and clocks (virtual time in tests).
 *
 * A wrong field throws `MCP_TX_VALIDATION` naming it (`Invalid config.retry.maxAttempts: …`).
 *
 * @example
 * const tx = createMcpTx(client, {
 *   timeoutMs: 10_000,
 *   retry: { maxAttempts: 5, deadlineMs: 60_000 },
 *   limiter: tokenBucket({ ratePerSecond: 20, burst: 10 }),
 *   breaker: new CircuitBreaker({ failureThreshold: 5 }),
 *   tools: { charge: { idempotencyKey: (args) => `charge-${String(args.orderId)}` } },
 * });
 */
export type TxConfig = z.input<typeof TxConfigSchema>;
export type ResolvedTxConfig = z.output<typeof TxConfigSchema>;

/**
 * Parses `value` with `schema`, or throws a `MCP_TX_VALIDATION` {@link TxError} whose message names
 * the first bad field under `root`.
 *
 * @example
 * const policy = parseOrThrow(PartialRetryPolicySchema, { maxAttempts: 0 }, 'retry');
 * // throws: Invalid retry.maxAttempts: must be at least 1
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const { issue, path } = mostSpecificIssue(parsed.error.issues, []);
  if (issue?.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return throwValidation([root, ...path, key], 'is not a known option');
  }
  return throwValidation([root, ...path], issue?.message ?? 'is invalid');
}

type Issue = z.core.$ZodIssue;

/** The first issue, looking into the branch of a union that got furthest (`false | {…}` options, say). */
function mostSpecificIssue(
  issues: readonly Issue[],
  prefix: readonly string[],
): { issue: Issue | undefined; path: string[] } {
  const issue = issues[0];
  const path = [...prefix, ...(issue?.path.map(String) ?? [])];
  if (issue?.code !== 'invalid_union' || issue.errors.length === 0) return { issue, path };
  const branches = issue.errors.map((branch) => mostSpecificIssue(branch, path));
  return branches.reduce((best, branch) => (branch.path.length > best.path.length ? branch : best), {
    issue,
    path,
  });
}

function throwValidation(path: readonly string[], reason: string): never {
  throw validationError(path.filter((part) => part !== '').join('.'), reason);
}
