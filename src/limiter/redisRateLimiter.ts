import type { Redis } from 'ioredis';
import { asyncScheduler, Observable, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import * as z from 'zod';
import {
  functionSchema,
  MaxQueueSchema,
  parseOrThrow,
  SchedulerSchema,
  TimeoutMsSchema,
} from '../config/validators.js';
import { type TxError, validationError } from '../core/errors.js';
import { StoreOutage, storeUnavailable, withinDeadline } from '../core/storeDeadline.js';
import type { Limiter, Permit } from './limiter.js';
import { queueFullError } from './waitQueue.js';

/** The highest rate: the script keeps time in whole microseconds, so one call per µs at most. */
const MAX_RATE_PER_SECOND = 1_000_000;

const RedisRateLimiterOptionsSchema = z.strictObject({
  key: z.string().min(1, 'must not be empty'),
  ratePerSecond: z
    .number()
    .positive('must be greater than 0')
    .max(MAX_RATE_PER_SECOND, `must be at most ${MAX_RATE_PER_SECOND}`),
  burst: z.number().int('must be a whole number').min(1, 'must be at least 1'),
  maxQueue: MaxQueueSchema,
  commandTimeoutMs: TimeoutMsSchema.default(2_000),
  failOpen: z.boolean().default(false),
  /**
   * Told of every Redis failure (a `MCP_TX_STORE_UNAVAILABLE` TxError), whether the waiting calls
   * then fail or, with `failOpen`, go on: to log or count outages. What it throws is ignored.
   */
  onStoreError: functionSchema<(error: TxError) => void>('(error) => void').optional(),
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link redisRateLimiter}:
 *
 * - `key` (required): the Redis key of the shared budget (the only key the limiter touches);
 *   processes using the same key share it.
 * - `ratePerSecond` (required): calls per second on average, across all processes; at most
 *   1 000 000. The interval between calls is kept in whole microseconds, rounded up, so the rate
 *   is never exceeded (30 000/s runs at 29 412/s; 1 000/s exactly).
 * - `burst` (required): calls that may start at once; at least 1.
 * - `maxQueue` (no bound): calls that may wait in this process; past it a call fails with
 *   `MCP_TX_RATE_LIMITED`.
 * - `commandTimeoutMs` (2000): how long a request to Redis may take; past it, or when Redis fails,
 *   every call waiting in this process fails with `MCP_TX_STORE_UNAVAILABLE` (retryable, though
 *   `retryWithPolicy` retries it only when the policy names the code), whatever the client's own
 *   retry and offline-queue settings — or, with `failOpen`, goes on.
 * - `failOpen` (`false`): when Redis fails or stalls past `commandTimeoutMs`, grant the permit
 *   instead of failing: every call waiting then starts, and while Redis stays down calls start at
 *   once, unthrottled, without waiting on Redis (one request at a time asks whether it is back; its
 *   first answer restores the shared budget). The trade-off: availability over the shared limit —
 *   during an outage this process sends calls at whatever rate they come, and so does every other
 *   process failing open, so the API behind the limiter may see far more than `ratePerSecond`. Keep
 *   it `false` when exceeding the limit costs more than failing the calls (a hard quota, a paid API
 *   that bans on overuse). The failures are reported to `onStoreError`, else by a process warning
 *   (code `MCP_TX_STORE_FAIL_OPEN`) once per outage.
 * - `onStoreError` (none): `(error) => void`, told of every Redis failure, failing open or not
 *   (documented on the field).
 * - `scheduler` (`asyncScheduler`): the timer that waits before asking Redis again.
 *
 * @example
 * const limiter = redisRateLimiter(redis, { key: 'mcp-tx:rate:search', ratePerSecond: 50, burst: 10, commandTimeoutMs: 500 });
 */
export type RedisRateLimiterOptions = z.input<typeof RedisRateLimiterOptionsSchema>;

/**
 * GCRA on Redis's own clock, in whole microseconds (exact in a Lua number): 0 when a call may start
 * now (and the budget is taken), else how many milliseconds until one may. KEYS[1]: the theoretical
 * arrival time. ARGV: emission interval (µs), burst.
 */
const GCRA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = (tonumber(ARGV[2]) - 1) * interval
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
if now < tat - tolerance then return math.ceil((tat - tolerance - now) / 1000) end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0`;

const NO_RELEASE: Permit = Object.freeze({ release() {} });

interface GcraCommand {
  mcpTxGcra(key: string, intervalUs: number, burst: number): Promise<number>;
}

/**
 * A rate limiter whose budget several processes share through Redis: at most `burst` calls at once
 * and `ratePerSecond` on average across all of them (GCRA in one Lua script on one key, on Redis's
 * clock). In each process calls wait in FIFO order, one asking Redis at a time; past `maxQueue`
 * waiting, a call fails with `MCP_TX_RATE_LIMITED`. If Redis fails or does not answer within
 * `commandTimeoutMs`, every call waiting in this process fails at once with
 * `MCP_TX_STORE_UNAVAILABLE` — or, with `failOpen: true`, starts at once, and calls go on
 * unthrottled until Redis answers again (see {@link RedisRateLimiterOptions}).
 *
 * @example
 * const limiter = redisRateLimiter(new Redis(process.env.REDIS_URL), { key: 'search-api', ratePerSecond: 20, burst: 5 });
 * const tx = createMcpTx(client, { limiter });
 * // or, preferring availability to the shared budget while Redis is down:
 * redisRateLimiter(redis, { key: 'search-api', ratePerSecond: 20, burst: 5, failOpen: true, onStoreError: (e) => log.warn(e.message) });
 */
export function redisRateLimiter(redis: Redis, options: RedisRateLimiterOptions): Limiter {
  if (typeof (redis as Partial<Redis> | null)?.defineCommand !== 'function') {
    throw validationError('redis', 'must be an ioredis client');
  }
  const settings = parseOrThrow(RedisRateLimiterOptionsSchema, options, 'options');
  if (!('mcpTxGcra' in redis)) redis.defineCommand('mcpTxGcra', { numberOfKeys: 1, lua: GCRA });
  return new RedisRateLimiter(redis as unknown as GcraCommand, settings);
}

class RedisRateLimiter implements Limiter {
  private readonly waiting = new Set<Subscriber<Permit>>();
  private readonly intervalUs: number;
  private readonly scheduler: SchedulerLike;
  private readonly outage: StoreOutage;
  private asking = false;
  private wake?: Subscription;

  constructor(
    private readonly redis: GcraCommand,
    private readonly settings: z.output<typeof RedisRateLimiterOptionsSchema>,
  ) {
    this.intervalUs = Math.ceil(1_000_000 / settings.ratePerSecond);
    this.scheduler = settings.scheduler ?? asyncScheduler;
    this.outage = new StoreOutage('Rate limiter', 'calls go on unthrottled', settings);
  }

  acquire(): Observable<Permit> {
    return new Observable<Permit>((subscriber) => {
      if (this.settings.failOpen && this.outage.isDown) {
        // Failing open: start now; one request at a time asks Redis (and takes this call's budget).
        this.outage.check(() => this.askRedis());
        subscriber.next(NO_RELEASE);
        subscriber.complete();
        return;
      }
      if (this.waiting.size >= this.settings.maxQueue) {
        subscriber.error(queueFullError(this.waiting.size));
        return;
      }
      this.waiting.add(subscriber);
      this.pump();
      return () => {
        this.waiting.delete(subscriber);
        if (this.waiting.size === 0) this.stopWaking();
      };
    });
  }

  /** While calls wait, asks Redis for the first of them, one request at a time. */
  private pump(): void {
    if (this.waiting.size === 0 || this.asking || this.wake !== undefined) return;
    this.asking = true;
    this.askRedis().then(
      (waitMs) => {
        this.asking = false;
        this.outage.answered();
        if (waitMs > 0) this.askAgainIn(waitMs);
        else this.admitFirst();
      },
      (error: unknown) => {
        this.asking = false;
        const failure = storeUnavailable('Rate limiter', error);
        this.outage.failed(failure);
        if (this.settings.failOpen) this.admitAll();
        else this.failAll(failure);
      },
    );
  }

  /** One GCRA request: 0 when a call may start now (its budget taken), else ms to wait; bounded by `commandTimeoutMs`. */
  private askRedis(): Promise<number> {
    const { key, burst, commandTimeoutMs } = this.settings;
    return withinDeadline(
      this.redis.mcpTxGcra(key, this.intervalUs, burst),
      commandTimeoutMs,
      'Rate limiter',
    );
  }

  /** Redis took the budget for one call: the first one waiting now starts. */
  private admitFirst(): void {
    const first = this.waiting.values().next().value;
    if (first !== undefined) {
      this.waiting.delete(first);
      first.next(NO_RELEASE);
      first.complete();
    }
    this.pump();
  }

  private askAgainIn(waitMs: number): void {
    if (this.waiting.size === 0) return;
    this.wake = this.scheduler.schedule(() => {
      this.wake = undefined;
      this.pump();
    }, waitMs);
  }

  /** Redis failed or stalled, failing open: every call waiting here starts now. */
  private admitAll(): void {
    const admitted = [...this.waiting];
    this.waiting.clear();
    this.stopWaking();
    for (const subscriber of admitted) {
      subscriber.next(NO_RELEASE);
      subscriber.complete();
    }
  }

  /** Redis failed or stalled: every call waiting here would wait on it too, so all fail now. */
  private failAll(error: TxError): void {
    const failed = [...this.waiting];
    this.waiting.clear();
    for (const subscriber of failed) subscriber.error(error);
  }

  private stopWaking(): void {
    this.wake?.unsubscribe();
    this.wake = undefined;
  }
}
