import type { Redis } from 'ioredis';
import { defer, distinctUntilChanged, Observable } from 'rxjs';
import { z } from 'zod';
import { parseOrThrow, TimeoutMsSchema } from '../config/validators.js';
import { TxError, TxErrorCode, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import { storeUnavailable, withinDeadline } from '../core/storeDeadline.js';
import { type Breaker, type BreakerPermit, type BreakerState, defaultIsFailure } from './circuitBreaker.js';

const RedisBreakerOptionsSchema = z.strictObject({
  key: z.string().min(1, 'must not be empty'),
  failureThreshold: z.number().int().min(1, 'must be at least 1').default(5),
  recoveryTimeoutMs: TimeoutMsSchema.default(60_000),
  successThreshold: z.number().int().min(1, 'must be at least 1').default(1),
  /** How long a process may hold the half-open probe before another may take it (ms). */
  probeTimeoutMs: TimeoutMsSchema.default(30_000),
  commandTimeoutMs: TimeoutMsSchema.default(2_000),
  isFailure: z
    .custom<(error: unknown) => boolean>((value) => typeof value === 'function', 'must be a function')
    .optional(),
});

/**
 * Options of {@link RedisCircuitBreaker}:
 *
 * - `key` (required): names the breaker; every process using the same key shares one. Its state is
 *   the Redis hash `{<key>}`, which is also the pub/sub channel of its transitions, and its probe
 *   lock is `{<key>}:probe` — one hash tag, so both live in one slot of a Redis Cluster.
 * - `failureThreshold` (5): consecutive failures, across processes, that open it.
 * - `recoveryTimeoutMs` (60 000): how long it stays open before one process may probe; at most
 *   2 147 483 647.
 * - `successThreshold` (1): successful probes that close it again.
 * - `probeTimeoutMs` (30 000): how long a process may hold the probe before another may take it; at
 *   most 2 147 483 647. A probe that outlasts it is ignored (see {@link RedisCircuitBreaker}), so
 *   set it above the slowest call, timeout included.
 * - `isFailure` (`defaultIsFailure`): `(error) => boolean`, which errors count as failures.
 * - `commandTimeoutMs` (2 000): how long any one Redis operation may take before it fails with
 *   `MCP_TX_STORE_UNAVAILABLE`, so a Redis that is down or stalled answers in bounded time whatever
 *   the client's own retry and offline-queue settings; at most 2 147 483 647.
 *
 * @example
 * const breaker = new RedisCircuitBreaker(redis, { key: 'mcp-tx:breaker:pricing', failureThreshold: 5 });
 */
export type RedisBreakerOptions = z.input<typeof RedisBreakerOptionsSchema>;

const NOW = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/**
 * KEYS: state hash, probe lock. ARGV: recovery ms, probe lock ms, the would-be prober's token (kept in
 * the lock). → { 'closed' | 'probe' | 'open', retryAfterMs }
 */
const ADMIT = `${NOW}
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return { 'closed', 0 } end
local due = tonumber(redis.call('HGET', KEYS[1], 'openedAt') or '0') + tonumber(ARGV[1])
if state == 'open' and now < due then return { 'open', due - now } end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then
  if state ~= 'half-open' then
    redis.call('HSET', KEYS[1], 'state', 'half-open', 'successes', 0)
    redis.call('PUBLISH', KEYS[1], 'half-open')
  end
  return { 'probe', 0 }
end
return { 'open', 0 }`;

/**
 * KEYS: state hash, probe lock. ARGV: 'success' | 'failure' | 'release' (a probe's only), the probe's
 * token ('' when the permit is not a probe), failure threshold, success threshold. A probe whose token the lock no
 * longer holds (expired, or taken by another probe since) is stale: nothing changes. → the state.
 */
const REPORT = `${NOW}
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local function move(to, ...)
  redis.call('HSET', KEYS[1], 'state', to, ...)
  redis.call('PUBLISH', KEYS[1], to)
  return to
end
if ARGV[2] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return state end
  redis.call('DEL', KEYS[2])
  if ARGV[1] == 'release' or state ~= 'half-open' then return state end
  if ARGV[1] == 'failure' then return move('open', 'openedAt', now, 'failures', 0) end
  if redis.call('HINCRBY', KEYS[1], 'successes', 1) >= tonumber(ARGV[4]) then
    return move('closed', 'failures', 0, 'successes', 0)
  end
  return state
end
if state ~= 'closed' then return state end
if ARGV[1] == 'success' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  return state
end
if redis.call('HINCRBY', KEYS[1], 'failures', 1) >= tonumber(ARGV[3]) then return move('open', 'openedAt', now) end
return state`;

interface BreakerCommands {
  mcpTxBreakerAdmit(
    state: string,
    lock: string,
    recoveryMs: number,
    lockMs: number,
    token: string,
  ): Promise<[string, number]>;
  mcpTxBreakerReport(
    state: string,
    lock: string,
    outcome: 'success' | 'failure' | 'release',
    token: string,
    failureThreshold: number,
    successThreshold: number,
  ): Promise<string>;
}

/**
 * A circuit breaker whose state lives in Redis, shared by every process using the same `key`: a
 * breaker one process opens refuses calls in all of them; when the recovery time has passed exactly
 * one process at a time gets the half-open probe (a lock that expires after `probeTimeoutMs`, so a
 * crashed prober does not block recovery); `successThreshold` successful probes close it, a failed
 * probe re-opens it. Each probe is fenced by a fresh token kept in the lock: its report releases the
 * lock and moves the breaker only while the lock still holds that token. A probe slower than
 * `probeTimeoutMs` has lost its window: its late success, failure or release is ignored — it counts
 * nothing, moves nothing, and leaves alone the lock another process may have taken since — so only
 * the current probe decides, and the breaker stays half-open until it does (or, when nobody took
 * the lock, until the next caller probes). `state$` follows the transitions any process makes
 * (Redis pub/sub, so within the network round trip). A Redis that fails, or does not answer within
 * `commandTimeoutMs` (down or stalled), refuses the call with `MCP_TX_STORE_UNAVAILABLE`; calls work
 * again once it answers, on the same client.
 *
 * @example
 * const breaker = new RedisCircuitBreaker(new Redis(process.env.REDIS_URL), { key: 'pricing', failureThreshold: 5 });
 * const tx = createMcpTx(client, { breaker });
 */
export class RedisCircuitBreaker implements Breaker {
  private readonly settings: z.output<typeof RedisBreakerOptionsSchema>;
  private readonly redis: Redis & BreakerCommands;
  private readonly stateKey: string;
  private readonly lockKey: string;

  constructor(redis: Redis, options: RedisBreakerOptions) {
    if (typeof (redis as Partial<Redis> | null)?.defineCommand !== 'function') {
      throw validationError('redis', 'must be an ioredis client');
    }
    this.settings = parseOrThrow(RedisBreakerOptionsSchema, options, 'options');
    if (!('mcpTxBreakerAdmit' in redis)) {
      redis.defineCommand('mcpTxBreakerAdmit', { numberOfKeys: 2, lua: ADMIT });
      redis.defineCommand('mcpTxBreakerReport', { numberOfKeys: 2, lua: REPORT });
    }
    this.redis = redis as Redis & BreakerCommands;
    this.stateKey = `{${this.settings.key}}`;
    this.lockKey = `${this.stateKey}:probe`;
  }

  /**
   * Asks Redis (one script) for leave: a permit when closed, or the probe when the recovery time has
   * passed and no other process holds it; else `MCP_TX_CIRCUIT_OPEN` with `retryAfterMs`. Redis
   * errors and timeouts fail with `MCP_TX_STORE_UNAVAILABLE` (retryable).
   */
  acquire(): Observable<BreakerPermit> {
    const { key, recoveryTimeoutMs, probeTimeoutMs } = this.settings;
    return defer(async () => {
      const token = newRequestId();
      const admitting = this.redis.mcpTxBreakerAdmit(
        this.stateKey,
        this.lockKey,
        recoveryTimeoutMs,
        probeTimeoutMs,
        token,
      );
      const [admission, retryAfterMs] = await this.bounded(admitting).catch((error: unknown) => {
        // Should Redis still run the script late, the probe it hands out to nobody is let go at once.
        admitting.then(
          ([late]) => late === 'probe' && this.permit(token).release(),
          () => undefined,
        );
        throw error;
      });
      if (admission === 'open') {
        const wait = Math.max(0, Number(retryAfterMs));
        throw new TxError(TxErrorCode.CircuitOpen, `Circuit breaker ${key} is open; retry after ${wait} ms`, {
          retryAfterMs: wait,
        });
      }
      return this.permit(admission === 'probe' ? token : undefined);
    });
  }

  /** The state in Redis now; `MCP_TX_STORE_UNAVAILABLE` when Redis fails or does not answer in time. */
  async getState(): Promise<BreakerState> {
    return ((await this.bounded(this.redis.hget(this.stateKey, 'state'))) as BreakerState | null) ?? 'closed';
  }

  /**
   * The state now, then every transition any process makes, on a subscriber connection of its own
   * (listening starts before the state is read). Redis blips do not end it: on every reconnection it
   * re-reads the state and emits it if it changed; it errors with `MCP_TX_STORE_UNAVAILABLE` only
   * when that connection gives up (ioredis's `retryStrategy` stops reconnecting).
   */
  get state$(): Observable<BreakerState> {
    return new Observable<BreakerState>((subscriber) => {
      const listener = this.redis.duplicate();
      const readAfterSubscribing = () =>
        listener
          .subscribe(this.stateKey)
          .then(() => this.getState())
          .then(
            (state) => subscriber.next(state),
            () => undefined,
          ); // read again on the next 'ready'
      listener.on('error', () => undefined); // transient: ioredis reconnects and re-subscribes
      listener.on('ready', readAfterSubscribing);
      listener.on('message', (_channel, state) => subscriber.next(state as BreakerState));
      listener.on('end', () =>
        subscriber.error(
          storeUnavailable('Circuit breaker store', new Error('subscriber connection closed')),
        ),
      );
      return () => listener.disconnect();
    }).pipe(distinctUntilChanged());
  }

  /** `operation`, failing with `MCP_TX_STORE_UNAVAILABLE` when Redis fails or is slower than `commandTimeoutMs`. */
  private bounded<T>(operation: Promise<T>): Promise<T> {
    return withinDeadline(operation, this.settings.commandTimeoutMs, 'Circuit breaker store');
  }

  /** A permit; `probeToken` is the token the probe lock was taken with, none when closed. */
  private permit(probeToken: string | undefined): BreakerPermit {
    let reported = false;
    const report = (outcome: 'success' | 'failure' | 'release') => {
      if (reported) return;
      reported = true;
      if (outcome === 'release' && probeToken === undefined) return;
      const { failureThreshold, successThreshold } = this.settings;
      const reporting = this.redis.mcpTxBreakerReport(
        this.stateKey,
        this.lockKey,
        outcome,
        probeToken ?? '',
        failureThreshold,
        successThreshold,
      );
      this.bounded(reporting).catch(() => undefined); // the probe lock expires; a lost report only delays the breaker
    };
    return {
      success: () => report('success'),
      failure: (error) =>
        report((this.settings.isFailure ?? defaultIsFailure)(error) ? 'failure' : 'release'),
      release: () => report('release'),
    };
  }
}
