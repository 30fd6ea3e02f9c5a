/**
 * What both breakers validate: the options they share (each breaker's schema extends this one with
 * its own fields) and the snapshot of a breaker's state.
 */
import * as z from 'zod';
import { functionSchema, parseOrThrow, TimeoutMsSchema } from '../config/validators.js';
import { defaultIsFailure } from './breaker.js';

/**
 * A count option or field: a whole number from `minimum` up.
 *
 * @example
 * const Schema = z.strictObject({ halfOpenMaxCalls: wholeNumberAtLeast(1).default(1) });
 */
export const wholeNumberAtLeast = (minimum: number) =>
  z.number().int('must be a whole number').min(minimum, `must be at least ${minimum}`);

/**
 * The options every breaker takes; documented on {@link CircuitBreakerOptions}.
 *
 * @example
 * const RedisBreakerOptionsSchema = BreakerOptionsSchema.extend({ key: z.string().min(1) });
 */
export const BreakerOptionsSchema = z.strictObject({
  failureThreshold: wholeNumberAtLeast(1).default(5),
  recoveryTimeoutMs: TimeoutMsSchema.default(60_000),
  successThreshold: wholeNumberAtLeast(1).default(1),
  isFailure: functionSchema<(error: unknown) => boolean>('(error) => boolean').default(
    () => defaultIsFailure,
  ),
});

/**
 * The shared options once parsed: every default filled in, `isFailure` included.
 *
 * @example
 * const settings: BreakerSettings = parseOrThrow(BreakerOptionsSchema, {}, 'options');
 */
export type BreakerSettings = z.output<typeof BreakerOptionsSchema>;

const BreakerSnapshotSchema = z.strictObject({
  state: z.enum(['closed', 'open', 'half-open'], { message: "must be 'closed', 'open' or 'half-open'" }),
  failures: wholeNumberAtLeast(0),
  successes: wholeNumberAtLeast(0),
  openedAt: z.number().finite('must be a finite number'),
});

/**
 * A breaker's state as plain JSON, from {@link CircuitBreaker.export}: `state`, `failures`
 * (consecutive, while closed), `successes` (probes, while half-open) and `openedAt` (when it last
 * opened, on the breaker's clock: ms since the epoch with the default scheduler).
 * {@link CircuitBreaker.restore} takes it back.
 *
 * @example
 * await writeFile('breaker.json', JSON.stringify(breaker.export()));
 * // after a restart:
 * breaker.restore(JSON.parse(await readFile('breaker.json', 'utf8')) as BreakerSnapshot);
 */
export type BreakerSnapshot = z.infer<typeof BreakerSnapshotSchema>;

/**
 * `value` as a {@link BreakerSnapshot}, or a `MCP_TX_VALIDATION` error naming the bad field under
 * `snapshot`.
 *
 * @example
 * const { state, openedAt } = parseSnapshot(JSON.parse(saved));
 */
export function parseSnapshot(value: unknown): BreakerSnapshot {
  return parseOrThrow(BreakerSnapshotSchema, value, 'snapshot');
}
