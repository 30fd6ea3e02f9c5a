import type { Redis } from 'ioredis';
import { catchError, defer, distinctUntilChanged, Observable, of, switchMap, throwError } from 'rxjs';
import { z } from 'zod';
import { TxError, TxErrorCode, validationError } from '../errors.js';
import { parseOrThrow } from '../schemas.js';
import { type Breaker, type BreakerPermit, type BreakerState, defaultIsFailure } from './circuitBreaker.js';

const RedisBreakerOptionsSchema = z.strictObject({
  key: z.string().min(1, 'must not be empty'),
  failureThreshold: z.number().int().min(1, 'must be at least 1').default(5),
  recoveryTimeoutMs: z.number().int().positive('must be greater than 0').default(60_000),
  successThreshold: z.number().int().min(1, 'must be at least 1').default(1),
  /** How long a process may hold the half-open probe before another may take it (ms). */
  probeTimeoutMs: z.number().int().positive('must be greater than 0').default(30_000),
  isFailure: z
    .custom<(error: unknown) => boolean>((value) => typeof value === 'function', 'must be a function')
    .optional(),
});

/**
 * Options of {@link RedisCircuitBreaker}:
 *
 * - `key` (required): the Redis hash that holds the state, and the pub/sub channel of its
 *   transitions; every process using the same key shares one breaker. The probe lock is `<key>:probe`.
 * - `failureThreshold` (5): consecutive failures, across processes, that open it.
 * - `recoveryTimeoutMs` (60 000): how long it stays open before one process may probe.
 * - `successThreshold` (1): successful probes that close it again.
 * - `probeTimeoutMs` (30 000): how long a process may hold the probe before another may take it.
 * - `isFailure` (`defaultIsFailure`): `(error) => boolean`, which errors count as failures.
 *
 * @example
 * const breaker = new RedisCircuitBreaker(redis, { key: 'mcp-tx:breaker:pricing', failureThreshold: 5 });
 */
export type RedisBreakerOptions = z.input<typeof RedisBreakerOptionsSchema>;

const NOW = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/** KEYS: state hash, probe lock. ARGV: recovery ms, probe lock ms. → { 'closed' | 'probe' | 'open', retryAfterMs } */
const ADMIT = `${NOW}
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return { 'closed', 0 } end
local due = tonumber(redis.call('HGET', KEYS[1], 'openedAt') or '0') + tonumber(ARGV[1])
if state == 'open' and now < due then return { 'open', due - now } end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  if state ~= 'half-open' then
    redis.call('HSET', KEYS[1], 'state', 'half-open', 'successes', 0)
    redis.call('PUBLISH', KEYS[1], 'half-open')
  end
  return { 'probe', 0 }
end
return { 'open', 0 }`;

/** KEYS: state hash, probe lock. ARGV: 'success' | 'failure', probe '1' | '0', failure threshold, success threshold. */
const REPORT = `${NOW}
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local function move(to, ...)
  redis.call('HSET', KEYS[1], 'state', to, ...)
  redis.call('PUBLISH', KEYS[1], to)
  return to
end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
  if state ~= 'half-open' then return state end
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
  ): Promise<[string, number]>;
  mcpTxBreakerReport(
    state: string,
    lock: string,
    outcome: string,
    probe: string,
    failureThreshold: number,
    successThreshold: number,
  ): Promise<string>;
}

/**
 * A circuit breaker whose state lives in Redis, shared by every process using the same `key`: a
 * breaker one process opens refuses calls in all of them; when the recovery time has passed exactly
 * one process at a time gets the half-open probe (a lock that expires after `probeTimeoutMs`, so a
 * crashed prober does not block recovery); `successThreshold` successful probes close it, a failed
 * probe re-opens it. `state$` follows the transitions any process makes (Redis pub/sub, so within
 * the network round trip). Redis errors refuse the call with `MCP_TX_STORE_UNAVAILABLE`.
 *
 * @example
 * const breaker = new RedisCircuitBreaker(new Redis(process.env.REDIS_URL), { key: 'pricing', failureThreshold: 5 });
 * const tx = createMcpTx(client, { breaker });
 */
export class RedisCircuitBreaker implements Breaker {
  private readonly settings: z.output<typeof RedisBreakerOptionsSchema>;
  private readonly redis: Redis & BreakerCommands;
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
    this.lockKey = `${this.settings.key}:probe`;
  }

  /**
   * Asks Redis (one script) for leave: a permit when closed, or the probe when the recovery time has
   * passed and no other process holds it; else `MCP_TX_CIRCUIT_OPEN` with `retryAfterMs`. Redis
   * errors fail with `MCP_TX_STORE_UNAVAILABLE` (retryable).
   */
  acquire(): Observable<BreakerPermit> {
    const { key, recoveryTimeoutMs, probeTimeoutMs } = this.settings;
    return defer(() =>
      this.redis.mcpTxBreakerAdmit(key, this.lockKey, recoveryTimeoutMs, probeTimeoutMs),
    ).pipe(
      switchMap(([admission, retryAfterMs]) => {
        if (admission === 'open') {
          const wait = Math.max(0, Number(retryAfterMs));
          return throwError(
            () =>
              new TxError(TxErrorCode.CircuitOpen, `Circuit breaker ${key} is open; retry after ${wait} ms`, {
                retryAfterMs: wait,
              }),
          );
        }
        return of(this.permit(admission === 'probe'));
      }),
      catchError((error: unknown) =>
        throwError(() => (error instanceof TxError ? error : unavailable(error))),
      ),
    );
  }

  /** The state in Redis now. */
  async getState(): Promise<BreakerState> {
    return ((await this.redis.hget(this.settings.key, 'state')) as BreakerState | null) ?? 'closed';
  }

  /** The state now, then every transition any process makes (listening starts before the first read). */
  get state$(): Observable<BreakerState> {
    return new Observable<BreakerState>((subscriber) => {
      const listener = this.redis.duplicate();
      const fail = (error: unknown) => subscriber.error(unavailable(error));
      listener.on('error', fail);
      listener.on('message', (_channel, state) => subscriber.next(state as BreakerState));
      listener
        .subscribe(this.settings.key)
        .then(() => this.getState())
        .then((state) => subscriber.next(state), fail);
      return () => listener.disconnect();
    }).pipe(distinctUntilChanged());
  }

  private permit(probe: boolean): BreakerPermit {
    let reported = false;
    const report = (outcome: 'success' | 'failure' | 'release') => {
      if (reported) return;
      reported = true;
      if (outcome === 'release') {
        if (probe) this.redis.del(this.lockKey).catch(() => undefined);
        return;
      }
      const { key, failureThreshold, successThreshold } = this.settings;
      this.redis
        .mcpTxBreakerReport(key, this.lockKey, outcome, probe ? '1' : '0', failureThreshold, successThreshold)
        .catch(() => undefined); // the probe lock expires; a lost report only delays the breaker
    };
    return {
      success: () => report('success'),
      failure: (error) =>
        report((this.settings.isFailure ?? defaultIsFailure)(error) ? 'failure' : 'release'),
      release: () => report('release'),
    };
  }
}

function unavailable(error: unknown): TxError {
  return new TxError(TxErrorCode.StoreUnavailable, `Circuit breaker store unavailable: ${String(error)}`, {
    retryable: true,
    cause: error,
  });
}
