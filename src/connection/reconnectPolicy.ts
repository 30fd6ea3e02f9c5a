import * as z from 'zod';
import { RetryPolicySchema, retryDelay } from '../config/retryPolicy.js';
import { TimeoutMsSchema } from '../config/validators.js';

/** The backoff fields a reconnect policy shares with the retry policy: the same bounds, the same meaning. */
const backoff = RetryPolicySchema.shape;

const ATTEMPTS = 'must be a whole number of at least 1, or Infinity';

/**
 * The zod schema of a {@link ReconnectPolicy}: fills in the defaults of {@link DEFAULT_RECONNECT_POLICY}.
 *
 * @example
 * const policy = parseOrThrow(ReconnectPolicySchema, { maxAttempts: 20 }, 'reconnect');
 * policy.baseDelayMs; // 100
 */
export const ReconnectPolicySchema = z
  .strictObject({
    baseDelayMs: backoff.baseDelayMs.default(100),
    maxDelayMs: backoff.maxDelayMs.default(5_000),
    multiplier: backoff.multiplier.default(2),
    jitter: backoff.jitter.default(true),
    maxAttempts: z
      .union([z.number().int(ATTEMPTS).min(1, ATTEMPTS), z.literal(Infinity)], { message: ATTEMPTS })
      .default(Infinity),
    connectTimeoutMs: TimeoutMsSchema.default(10_000),
  })
  .refine((policy) => policy.maxDelayMs >= policy.baseDelayMs, {
    message: 'must be at least baseDelayMs',
    path: ['maxDelayMs'],
  });

/**
 * How `createMcpTx(connect)` makes its connection again after losing it (`config.reconnect`). Every
 * field is optional; the backoff is the retry policy's:
 *
 * - `baseDelayMs` (100): the wait before the first reconnect attempt after a connection is lost;
 *   each later attempt waits `multiplier` times longer…
 * - `multiplier` (2): …
 * - `maxDelayMs` (5 000): …up to this cap (at least `baseDelayMs`).
 * - `jitter` (`true`, ±20 %): see {@link Jitter}.
 * - `maxAttempts` (`Infinity`): attempts in a row before giving up (the connection is then
 *   `closed`, and calls fail).
 * - `connectTimeoutMs` (10 000): the time one attempt may take (making the transport, starting it,
 *   `initialize`); also the time a ping may take to be answered.
 *
 * The very first connection is made at once; when it fails, the next attempts wait 100 ms, 200 ms…
 * as above. `reconnect: false` in the config turns reconnecting off: a lost connection is `closed`.
 *
 * @example
 * const tx = createMcpTx(connect, { reconnect: { baseDelayMs: 50, maxDelayMs: 2_000, maxAttempts: 30 } });
 */
export type ReconnectPolicy = z.input<typeof ReconnectPolicySchema>;

/** A {@link ReconnectPolicy} with every default filled in. */
export type ResolvedReconnectPolicy = z.output<typeof ReconnectPolicySchema>;

/**
 * The reconnect policy of an McpTx whose config says nothing: 100 ms, ×2, 5 s cap, ±20 % jitter,
 * unlimited attempts, 10 s per attempt. Frozen.
 *
 * @example
 * createMcpTx(connect, { reconnect: { ...DEFAULT_RECONNECT_POLICY, maxAttempts: 10 } });
 */
export const DEFAULT_RECONNECT_POLICY: ResolvedReconnectPolicy = Object.freeze(
  ReconnectPolicySchema.parse({}),
);

/**
 * The wait before connection attempt `attempt` (1 for the first): none before the very first
 * connection; otherwise the retry backoff of the attempts made since the connection was lost (or
 * since the first one failed).
 */
export function reconnectDelay(
  policy: ResolvedReconnectPolicy,
  attempt: number,
  wasConnected: boolean,
  random: () => number = Math.random,
): number {
  const waits = wasConnected ? attempt : attempt - 1;
  return waits < 1 ? 0 : retryDelay(policy, waits, random);
}
