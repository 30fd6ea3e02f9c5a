/**
 * The Lua scripts of `redisTaskStore`: each reads and changes one task atomically, on Redis's own
 * clock (`TIME`), so that replicas with skewed clocks agree on leases. A task is a hash at
 * `KEYS[1]` with `task` (the Task JSON but its status), `status`, `session`, `lease` (ms, while not
 * terminal) and `result`; `KEYS[2]` is the index (a sorted set by creation, all scores 0, members
 * `<createdAt ms, 15 digits>:<taskId>`).
 */

/** Milliseconds on the Redis clock. */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Looks the task up for a session (`ARGV[1]`, '' for none): a task of another session is not
 * found. (`keep` restarts a task's own TTL when it ends.)
 */
const LOOKUP = `${NOW}
local function lookup(session)
  local h = redis.call('HMGET', KEYS[1], 'task', 'status', 'session', 'lease', 'message', 'updated')
  if not h[1] then return nil end
  if session ~= '' and h[3] ~= '' and h[3] ~= session then return nil end
  return h
end`;

const TERMINAL = `
local function terminal(status)
  return status == 'completed' or status == 'failed' or status == 'cancelled'
end
local function keep(json)
  local ttl = cjson.decode(json).ttl
  if type(ttl) == 'number' and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
end`;

/** KEYS: task, index. ARGV: task JSON, session, lease ms, ttl ms (0: none), index member. */
export const CREATE = `${NOW}
redis.call('HSET', KEYS[1], 'task', ARGV[1], 'status', 'working', 'session', ARGV[2],
  'lease', now + tonumber(ARGV[3]), 'message', '', 'updated', '')
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
redis.call('ZADD', KEYS[2], 0, ARGV[5])
return now`;

/**
 * KEYS: task. ARGV: session, died message. Returns { task JSON, status, message, updated } or nil;
 * a task past its lease (its worker died) is marked failed first, with the died message.
 */
export const GET = `${LOOKUP}${TERMINAL}
local h = lookup(ARGV[1])
if not h then return nil end
if not terminal(h[2]) and tonumber(h[4]) < now then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'message', ARGV[2], 'updated', now, 'lease', 0)
  keep(h[1])
  return { h[1], 'failed', ARGV[2], tostring(now) }
end
return { h[1], h[2], h[5], h[6] }`;

/**
 * KEYS: task. ARGV: session, new status, message ('' keeps it), result JSON ('' for none).
 * Returns 'ok', 'missing' or 'terminal:<status>'. A terminal status ends the lease and restarts the TTL.
 */
export const UPDATE = `${LOOKUP}${TERMINAL}
local h = lookup(ARGV[1])
if not h then return 'missing' end
if terminal(h[2]) then return 'terminal:' .. h[2] end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated', now)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'message', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[4]) end
if terminal(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'lease', 0)
  keep(h[1])
end
return 'ok'`;

/** KEYS: task. ARGV: session. Returns the result JSON, false when none is stored, 'missing' when not found. */
export const RESULT = `${LOOKUP}
local h = lookup(ARGV[1])
if not h then return 'missing' end
return redis.call('HGET', KEYS[1], 'result')`;

/** KEYS: task. ARGV: lease ms. Extends the lease of a task still running; 1 if it was. */
export const RENEW = `${NOW}
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[1]))
return 1`;
