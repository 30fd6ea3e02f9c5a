import type { Redis } from 'ioredis';
import { asyncScheduler, Observable, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import { z } from 'zod';
import { TxError, TxErrorCode, validationError } from '../errors.js';
import { MaxQueueSchema, parseOrThrow, SchedulerSchema } from '../schemas.js';
import type { Limiter, Permit } from './limiter.js';
import { queueFullError } from './waitQueue.js';

const RedisRateLimiterOptionsSchema = z.strictObject({
  key: z.string().min(1, 'must not be empty'),
  ratePerSecond: z.number().positive('must be greater than 0').finite('must be finite'),
  burst: z.number().int('must be a whole number').min(1, 'must be at least 1'),
  maxQueue: MaxQueueSchema,
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link redisRateLimiter}:
 *
 * - `key` (required): the Redis key of the shared budget; processes using the same key share it.
 * - `ratePerSecond` (required): calls per second on average, across all processes.
 * - `burst` (required): calls that may start at once; at least 1.
 * - `maxQueue` (no bound): calls that may wait in this process; past it a call fails with
 *   `MCP_TX_RATE_LIMITED`.
 * - `scheduler` (`asyncScheduler`): the timer that waits before asking Redis again.
 *
 * @example
 * const limiter = redisRateLimiter(redis, { key: 'mcp-tx:rate:search', ratePerSecond: 50, burst: 10 });
 */
export type RedisRateLimiterOptions = z.input<typeof RedisRateLimiterOptionsSchema>;

/**
 * GCRA on Redis's own clock: 0 when a call may start now (and the budget is taken), else how many
 * milliseconds until one may. ARGV: emission interval (ms), burst.
 */
const GCRA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if now < tat - tolerance then return math.ceil(tat - tolerance - now) end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(tat + interval - now + tolerance) + 1)
return 0`;

const NO_RELEASE: Permit = Object.freeze({ release() {} });

interface GcraCommand {
  mcpTxGcra(key: string, intervalMs: number, burst: number): Promise<number>;
}

/**
 * A rate limiter whose budget several processes share through Redis: at most `burst` calls at once
 * and `ratePerSecond` on average across all of them (GCRA in one Lua script, on Redis's clock). In
 * each process calls wait in FIFO order, one asking Redis at a time; past `maxQueue` waiting, a call
 * fails with `MCP_TX_RATE_LIMITED`; if Redis cannot be reached, with `MCP_TX_STORE_UNAVAILABLE`.
 *
 * @example
 * const limiter = redisRateLimiter(new Redis(process.env.REDIS_URL), { key: 'search-api', ratePerSecond: 20, burst: 5 });
 * const tx = createMcpTx(client, { limiter });
 */
export function redisRateLimiter(redis: Redis, options: RedisRateLimiterOptions): Limiter {
  if (typeof (redis as Partial<Redis> | null)?.defineCommand !== 'function') {
    throw validationError('redis', 'must be an ioredis client');
  }
  const settings = parseOrThrow(RedisRateLimiterOptionsSchema, options, 'options');
  if (!('mcpTxGcra' in redis)) redis.defineCommand('mcpTxGcra', { numberOfKeys: 1, lua: GCRA });
  return new RedisRateLimiter(
    redis as unknown as GcraCommand,
    settings,
    settings.scheduler ?? asyncScheduler,
  );
}

class RedisRateLimiter implements Limiter {
  private readonly waiting = new Set<Subscriber<Permit>>();
  private asking = false;
  private wake?: Subscription;

  constructor(
    private readonly redis: GcraCommand,
    private readonly settings: z.output<typeof RedisRateLimiterOptionsSchema>,
    private readonly scheduler: SchedulerLike,
  ) {}

  acquire(): Observable<Permit> {
    return new Observable<Permit>((subscriber) => {
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

  /** Asks Redis for the head of the queue, one request at a time. */
  private pump(): void {
    const head = this.waiting.values().next().value as Subscriber<Permit> | undefined;
    if (head === undefined || this.asking || this.wake !== undefined) return;
    this.asking = true;
    const { key, ratePerSecond, burst } = this.settings;
    this.redis.mcpTxGcra(key, 1_000 / ratePerSecond, burst).then(
      (waitMs) => {
        this.asking = false;
        if (waitMs > 0) {
          this.wake = this.scheduler.schedule(() => {
            this.wake = undefined;
            this.pump();
          }, waitMs);
          return;
        }
        if (this.waiting.delete(head)) {
          head.next(NO_RELEASE);
          head.complete();
        }
        this.pump();
      },
      (error: unknown) => {
        this.asking = false;
        if (this.waiting.delete(head)) {
          head.error(
            new TxError(TxErrorCode.StoreUnavailable, `Rate limiter store unavailable: ${String(error)}`, {
              retryable: true,
              cause: error,
            }),
          );
        }
        this.pump();
      },
    );
  }

  private stopWaking(): void {
    this.wake?.unsubscribe();
    this.wake = undefined;
  }
}
