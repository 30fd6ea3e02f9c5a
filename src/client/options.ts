import * as z from 'zod';
import { TraceOptionsSchema } from '../../operators/trace.js';
import type { Breaker } from '../breaker/circuitBreaker.js';
import { RetryOptionSchema } from '../config/retryPolicy.js';
import {
  BoundedIdSchema,
  functionSchema,
  hasMethod,
  SchedulerSchema,
  TimeoutMsSchema,
  WaitMsSchema,
} from '../config/validators.js';
import { ReconnectPolicySchema } from '../connection/reconnectPolicy.js';
import type { JsonObject } from '../core/types.js';
import type { EventStore } from '../events/eventStore.js';
import type { HealthMonitor } from '../health/healthMonitor.js';
import type { IdempotencyStore } from '../idempotency/store.js';
import type { Limiter } from '../limiter/limiter.js';

const LimiterSchema = z.custom<Limiter>(
  (value) => hasMethod(value, 'acquire'),
  'must be a Limiter (tokenBucket(...), concurrencyLimit(...))',
);
const BreakerSchema = z.custom<Breaker>(
  (value) => hasMethod(value, 'acquire'),
  'must be a Breaker (new CircuitBreaker(...))',
);
const HealthMonitorSchema = z.custom<HealthMonitor>(
  (value) =>
    hasMethod(value, 'record') &&
    hasMethod(value, 'recordConnection') &&
    hasMethod(value, 'watchIdempotencyStore'),
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

/** Per-tool policy registered with `tx.tool(name, policy)`; `false` turns a configured operator off. */
export const ToolPolicySchema = z.strictObject({
  retry: RetryOptionSchema.optional(),
  timeoutMs: TimeoutMsSchema.optional(),
  /**
   * Derives the idempotency key of a call that does not pass one from its arguments. A function that
   * throws or returns a bad key (not a string of 1 to 255 characters) fails the call with
   * `MCP_TX_VALIDATION` before anything is sent.
   */
  idempotencyKey: functionSchema<(args: JsonObject) => string>('(args) => string').optional(),
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
 * - `idempotencyKey`: `(args) => string`, the key of a call that does not pass one (documented on
 *   the field).
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
  idempotencyKey: BoundedIdSchema.optional(),
  timeoutMs: TimeoutMsSchema.optional(),
  retry: RetryOptionSchema.optional(),
  transactionId: BoundedIdSchema.optional(),
  correlationId: BoundedIdSchema.optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal').optional(),
  /** Called with each progress notification the server sends: `{ progress, total?, message? }`. */
  onProgress:
    functionSchema<(progress: { progress: number; total?: number; message?: string }) => void>(
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
  maxBytes: z
    .number({ message: 'must be a number of bytes' })
    .int('must be a whole number of bytes')
    .min(65_536, 'must be at least 65536 (64 KiB)')
    .optional(),
  maxEntries: z.number().int().positive().max(100_000_000).optional(),
  store: StoreSchema.optional(),
});

/**
 * The default bound of one call's request on the wire (4 MiB): under the SDK's own limits (the
 * Streamable HTTP server reads at most 4 MiB of a request body, the stdio reader 10 MiB of buffered
 * input), so that an over-size call fails at once instead of timing out.
 */
const DEFAULT_MAX_MESSAGE_BYTES = 4 * 2 ** 20;

/**
 * The zod schema of {@link TxConfig}: `createMcpTx` parses its config with it, filling in the defaults.
 *
 * @example
 * const resolved = parseOrThrow(TxConfigSchema, { timeoutMs: 5_000 }, 'config');
 * resolved.closeTimeoutMs; // 30000
 */
export const TxConfigSchema = z.strictObject({
  timeoutMs: TimeoutMsSchema.default(30_000),
  retry: RetryOptionSchema.default({}),
  dedupe: orOff(DedupeConfigSchema, 'a dedupe config object').default({}),
  limiter: LimiterSchema.optional(),
  breaker: BreakerSchema.optional(),
  monitor: HealthMonitorSchema.optional(),
  events: EventStoreSchema.optional(),
  trace: z
    .union([z.boolean(), TraceOptionsSchema], { message: 'must be a boolean or trace options' })
    .default(false),
  closeTimeoutMs: TimeoutMsSchema.default(30_000),
  trustServerDedupe: z.boolean({ message: 'must be a boolean' }).default(false),
  sendCancellation: z.boolean({ message: 'must be a boolean' }).default(true),
  tools: z.record(z.string(), ToolPolicySchema).default({}),
  scheduler: SchedulerSchema.optional(),
  clientInfo: z
    .looseObject({
      name: z.string({ message: 'must be a string' }).min(1, 'must not be empty'),
      version: z.string({ message: 'must be a string' }).min(1, 'must not be empty'),
    })
    .optional(),
  reconnect: orOff(ReconnectPolicySchema, 'a reconnect policy object').prefault({}),
  pingIntervalMs: TimeoutMsSchema.optional(),
  maxMessageBytes: z
    .number({ message: 'must be a number of bytes' })
    .int('must be a whole number of bytes')
    .min(65_536, 'must be at least 65536 (64 KiB)')
    .default(DEFAULT_MAX_MESSAGE_BYTES),
});
/**
 * The configuration of {@link createMcpTx}. Every field is optional:
 *
 * - `timeoutMs` (30 000): the per-attempt timeout, unless a tool or call sets its own.
 * - `retry` (`{}`, i.e. {@link DEFAULT_RETRY_POLICY}: 3 attempts, 1 s base, ×2, 30 s cap, ±20 %
 *   jitter): a {@link PartialRetryPolicy} merged over the defaults, or `false` for no retry.
 * - `dedupe` (`{}`): `{ windowMs?, maxBytes?, maxEntries?, store? }` for the calls that carry an
 *   idempotency key — by default an in-memory store (`memoryIdempotencyStore`) keeping results
 *   `windowMs` (300 000 ms), bounded by `maxBytes` (512 MiB as the store estimates it, about 1.1 KB
 *   a small result: the 5-minute window holds up to ~1 600 keyed calls/s; past that the least
 *   recently used keys go early, counted in its `stats().evictedEarly` and reported by the
 *   `monitor`) and by `maxEntries` (no bound); `store` replaces it (a shared
 *   `redisIdempotencyStore`, say). `false` turns deduplication off.
 * - `limiter` (none): a `Limiter` every call waits for, attempt by attempt (`tokenBucket`,
 *   `concurrencyLimit`, `redisRateLimiter`).
 * - `breaker` (none): a `Breaker` every attempt asks (`CircuitBreaker`, `RedisCircuitBreaker`).
 * - `monitor` (none): a `HealthMonitor` told the outcome of every logical call; it also watches
 *   the default dedupe store (`report().idempotency`, an alert when its window is shortened).
 * - `events` (none): an `EventStore` every call is recorded in (`ToolCallRequested`,
 *   `ToolCallCompleted`, `ToolCallFailed`).
 * - `trace` (`false`): `true` or {@link TraceOptions} for one OpenTelemetry span per logical call.
 * - `closeTimeoutMs` (30 000): how long `tx.close()` waits for calls in flight before cancelling them.
 * - `trustServerDedupe` (`false`): treat the server as deduping repeated requests when it speaks
 *   MCP-Tx without advertising the `dedupe` feature (a server you know wraps every tool with a side
 *   effect, e.g. an older `txTool` server): a keyed call is then retried after an ambiguous failure
 *   (a timeout, a lost connection), and a saga settles its unknown steps there. Never for a Python
 *   MCP-Tx 0.1.0 server: it runs such a retry again.
 * - `sendCancellation` (`true`): `false` sends no `notifications/cancelled` on the connection — not
 *   on a timeout, an unsubscribe, a `signal` or `close()`; the call still ends at once here and the
 *   server's late answer is dropped. For servers that die on the notification (python-sdk 1.12.0,
 *   the MCP-Tx 0.1.0 era); such a server keeps running the abandoned request.
 * - `tools` (`{}`): a {@link ToolPolicy} per tool name, as `tx.tool(name, policy)` registers.
 * - `scheduler` (`asyncScheduler`): the RxJS scheduler for timers and clocks (virtual time in tests).
 * - `maxMessageBytes` (4 MiB, under the SDK's 4 MiB HTTP and 10 MiB stdio limits): the largest
 *   request a call may send; arguments whose JSON (UTF-8) with 8 KiB for the request envelope is
 *   larger fail the call with `MCP_TX_VALIDATION` naming `args` and the size, nothing sent. Raise
 *   it only as far as the server's transport reads.
 *
 * With a transport factory (`createMcpTx(connect, config)`), where mcp-tx owns the connection:
 *
 * - `clientInfo` (`{ name: 'mcp-tx', version: <mcp-tx's version> }`): the `clientInfo` the SDK
 *   client it makes sends in `initialize`.
 * - `reconnect` (`{}`, i.e. {@link DEFAULT_RECONNECT_POLICY}: 100 ms, ×2, 5 s cap, jitter,
 *   unlimited attempts, 10 s per attempt): a {@link ReconnectPolicy}, or `false` for no reconnect
 *   (a lost connection is then closed).
 * - `pingIntervalMs` (none): ping the server this often while connected; a ping unanswered within
 *   this time (at most `connectTimeoutMs`) counts as a lost connection.
 *
 * A client the user connected (`createMcpTx(client, config)`) is used as it is: these three do
 * nothing there.
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

/** Options of `tx.close()`: `timeoutMs`, 0 (cancel the calls in flight at once) to 2147483647 ms. */
export const CloseOptionsSchema = z.strictObject({ timeoutMs: WaitMsSchema.optional() });
export type ResolvedTxConfig = z.output<typeof TxConfigSchema>;
