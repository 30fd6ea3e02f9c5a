import { asyncScheduler, type SchedulerLike, type Subscription } from 'rxjs';
import * as z from 'zod';
import { MaxQueueSchema, parseOrThrow, SchedulerSchema } from '../config/validators.js';
import type { Permit } from './limiter.js';
import { WaitQueue } from './waitQueue.js';

const TokenBucketOptionsSchema = z.strictObject({
  ratePerSecond: z.number().positive('must be greater than 0').finite('must be finite'),
  burst: z.number().int('must be a whole number').min(1, 'must be at least 1'),
  maxQueue: MaxQueueSchema,
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link tokenBucket}:
 *
 * - `ratePerSecond` (required): tokens added per second, on average the calls started per second.
 * - `burst` (required): the bucket's size, calls that may start at once; at least 1.
 * - `maxQueue` (no bound): calls that may wait; past it a call fails with `MCP_TX_RATE_LIMITED`.
 * - `scheduler` (`asyncScheduler`): the clock and the timer (virtual time in tests).
 *
 * @example
 * const limiter = tokenBucket({ ratePerSecond: 0.5, burst: 1 }); // one call every 2 s
 */
export type TokenBucketOptions = z.input<typeof TokenBucketOptionsSchema>;

/** Float slack: a bucket this close to a whole token has one. */
const EPSILON = 1e-9;
const NO_RELEASE: Permit = Object.freeze({ release() {} });

/**
 * A token bucket: `burst` calls may start at once, then `ratePerSecond` on average. Tokens refill
 * continuously, computed from the clock when needed (no interval timer); calls that find none
 * wait in FIFO order (one timer, for the head) and none is dropped, up to `maxQueue` waiting, past
 * which a call fails with `MCP_TX_RATE_LIMITED`. In any window of T seconds at most
 * `burst + ratePerSecond·T` calls start — a strict bound, also when the timer fires late. Waiting
 * calls are woken by a timer of at least 1 ms, and at most `burst` start per wake-up, so a rate
 * above `1 000 × burst` per second needs a larger `burst` (e.g. `burst: rate / 100`) to be reached.
 *
 * @example
 * const limiter = tokenBucket({ ratePerSecond: 10, burst: 5, maxQueue: 1_000 });
 * burst$.pipe(mergeMap((args) => tx.attempt$('search', args).pipe(throttle(limiter))));
 */
export function tokenBucket(options: TokenBucketOptions): TokenBucket {
  const parsed = parseOrThrow(TokenBucketOptionsSchema, options, 'options');
  return new TokenBucket(
    parsed.ratePerSecond,
    parsed.burst,
    parsed.maxQueue,
    parsed.scheduler ?? asyncScheduler,
  );
}

/**
 * See {@link tokenBucket}.
 *
 * @example
 * const bucket = tokenBucket({ ratePerSecond: 5, burst: 5 });
 * console.log(bucket.available, bucket.queued);
 */
export class TokenBucket extends WaitQueue {
  private tokens: number;
  private refilledAt: number;
  private wake?: Subscription;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    maxQueue: number,
    private readonly scheduler: SchedulerLike,
  ) {
    super(maxQueue);
    this.tokens = burst;
    this.refilledAt = scheduler.now();
  }

  /** Tokens in the bucket now (fractional while refilling). */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  protected tryTake(): boolean {
    this.refill();
    if (this.tokens < 1 - EPSILON) return false;
    this.tokens = Math.max(0, this.tokens - 1);
    return true;
  }

  protected permit(): Permit {
    return NO_RELEASE;
  }

  /** Keeps one timer, due when the next token is, while calls wait (a queue change does not move it). */
  protected waitingChanged(): void {
    if (this.queued === 0) {
      this.wake?.unsubscribe();
      this.wake = undefined;
      return;
    }
    if (this.wake !== undefined) return;
    const waitMs = Math.ceil(((1 - this.available) * 1_000) / this.ratePerSecond);
    this.wake = this.scheduler.schedule(
      () => {
        this.wake = undefined;
        this.admitWaiting();
      },
      Math.max(0, waitMs),
    );
  }

  private refill(): void {
    const now = this.scheduler.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.ratePerSecond) / 1_000);
    this.refilledAt = now;
  }
}
