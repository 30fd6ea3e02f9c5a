/**
 * The two Lua scripts of `RedisCircuitBreaker`: admission and report each read and move the shared
 * state in one atomic step, which is why the counting rules of `breakerStrategy.ts` are applied
 * here once more, in Lua — keep the two in step. The state is the hash `{<key>}` (`state`,
 * `failures`, `successes`, `openedAt` on Redis's clock), which is also the pub/sub channel of its
 * transitions; the half-open probe lock is `{<key>}:probe`, holding its prober's token.
 */
import type { Redis } from 'ioredis';
import type { BreakerOutcome } from './breaker.js';

const NOW = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/**
 * KEYS: state hash, probe lock. ARGV: recovery ms, probe lock ms, the would-be prober's token (kept in
 * the lock). → { 'closed' } | { 'probe' } | { 'open', openedAt, now } | { 'probe-taken' }
 */
const ADMIT = `${NOW}
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return { 'closed' } end
local openedAt = tonumber(redis.call('HGET', KEYS[1], 'openedAt') or '0')
if state == 'open' and now < openedAt + tonumber(ARGV[1]) then return { 'open', openedAt, now } end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then
  if state ~= 'half-open' then
    redis.call('HSET', KEYS[1], 'state', 'half-open', 'successes', 0)
    redis.call('PUBLISH', KEYS[1], 'half-open')
  end
  return { 'probe' }
end
return { 'probe-taken' }`;

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

/**
 * What the admission script answers: a permit when closed, the probe, or a refusal — open since
 * `openedAt` (Redis's clock, read `now`), or half-open with the probe held by another caller.
 *
 * @example
 * const [answer, openedAt, now] = await redis.mcpTxBreakerAdmit(stateKey, lockKey, 60_000, 30_000, token);
 */
export type RedisAdmission = ['closed'] | ['probe'] | ['open', number, number] | ['probe-taken'];

/**
 * The breaker's scripts, as commands of an ioredis client ({@link withBreakerCommands}).
 *
 * @example
 * const redis = withBreakerCommands(new Redis());
 * await redis.mcpTxBreakerReport(stateKey, lockKey, 'success', '', 5, 1);
 */
export interface BreakerCommands {
  mcpTxBreakerAdmit(
    state: string,
    lock: string,
    recoveryMs: number,
    lockMs: number,
    token: string,
  ): Promise<RedisAdmission>;
  mcpTxBreakerReport(
    state: string,
    lock: string,
    outcome: BreakerOutcome,
    token: string,
    failureThreshold: number,
    successThreshold: number,
  ): Promise<string>;
}

/**
 * `redis` with the breaker's scripts defined on it (once per client).
 *
 * @example
 * const redis = withBreakerCommands(new Redis(process.env.REDIS_URL));
 */
export function withBreakerCommands(redis: Redis): Redis & BreakerCommands {
  if (!('mcpTxBreakerAdmit' in redis)) {
    redis.defineCommand('mcpTxBreakerAdmit', { numberOfKeys: 2, lua: ADMIT });
    redis.defineCommand('mcpTxBreakerReport', { numberOfKeys: 2, lua: REPORT });
  }
  return redis as Redis & BreakerCommands;
}
