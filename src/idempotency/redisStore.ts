import type { Redis } from 'ioredis';
import * as z from 'zod';
import { parseOrThrow, TimeoutMsSchema } from '../config/validators.js';
import { validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import { withinDeadline } from '../core/storeDeadline.js';
import {
  type BeginOutcome,
  type Completion,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  type EffectStore,
  type IdempotencyRecord,
  type IdempotencyStore,
} from './store.js';

const RedisStoreOptionsSchema = z.strictObject({
  prefix: z.string().min(1, 'must not be empty').default('mcp-tx:idem:'),
  windowMs: z.number().int().positive('must be greater than 0').default(DEFAULT_IDEMPOTENCY_WINDOW_MS),
  failOpen: z.boolean().default(false),
  commandTimeoutMs: TimeoutMsSchema.default(2_000),
});

/**
 * Options of {@link redisIdempotencyStore}, all optional:
 *
 * - `prefix` (`'mcp-tx:idem:'`): put before every key; processes sharing it share the keys.
 * - `windowMs` (300 000): how long completed records are kept when the caller does not say.
 * - `failOpen` (`false`): when Redis fails, let calls go ahead without deduplication instead of
 *   failing them with `MCP_TX_STORE_UNAVAILABLE` (`commit` never fails open; a key `begin` handed
 *   out while failing open is committed only if nobody has taken it since).
 * - `commandTimeoutMs` (2 000): how long any one Redis operation may take before it fails with
 *   `MCP_TX_STORE_UNAVAILABLE` (or fails open) — so a Redis that is down or stalled answers in
 *   bounded time whatever the client's own retry and offline-queue settings; at most 2 147 483 647.
 *
 * @example
 * const store = redisIdempotencyStore(redis, { prefix: 'shop:idem:', windowMs: 86_400_000 });
 */
export type RedisStoreOptions = z.input<typeof RedisStoreOptionsSchema>;

/**
 * An effect committed with {@link EffectStore.commit} on Redis: commands run in order, in one Lua
 * script, e.g. `[['HINCRBY', 'balances', 'alice', '500'], ['XADD', 'ledger', '*', 'to', 'alice']]`.
 * Redis runs a script in isolation but does not roll it back when a command fails, so keep effects
 * to writes that cannot fail on well-formed input. On a Redis Cluster the script runs on the node of
 * the idempotency key (`prefix` + key), so every key an effect writes must hash to the same slot:
 * give them a common hash tag (e.g. a prefix `{shop}:idem:` and keys `{shop}:balances`).
 *
 * @example
 * const effect: RedisEffect = [
 *   ['HINCRBY', 'balances', account, cents],
 *   ['XADD', 'ledger', '*', 'to', account],
 * ];
 * return withEffect({ content: [{ type: 'text', text: 'credited' }] }, effect);
 */
export type RedisEffect = ReadonlyArray<readonly [command: string, ...args: (string | number)[]]>;

const RedisEffectSchema = z
  .array(z.tuple([z.string().min(1, 'must name a command')], z.union([z.string(), z.number()])))
  .min(1, 'must hold at least one command');

/**
 * Atomically: a missing key is taken (in progress, with a TTL and the holder's token) → `new`; another fingerprint →
 * `conflict`; in progress → `in_progress`; else the stored JSON → `completed`.
 */
const BEGIN = `
local stored = redis.call('GET', KEYS[1])
if not stored then
  redis.call('SET', KEYS[1], cjson.encode({ f = ARGV[1], s = 'p', t = ARGV[3] }), 'PX', ARGV[2])
  return { 'new' }
end
local entry = cjson.decode(stored)
if entry.f ~= ARGV[1] then return { 'conflict' } end
if entry.s == 'p' then return { 'in_progress' } end
return { 'completed', stored }`;

/** Drops the key only while it is in progress (a completed record stays) — and, given a token (ARGV[1]), held under it. */
const RELEASE = `
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local entry = cjson.decode(stored)
if entry.s == 'p' and (ARGV[1] == '' or entry.t == ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Runs the effect's commands (ARGV[3], JSON) and, with a completion, stores the completed record
 * ARGV[4] for ARGV[5] ms — in mode (ARGV[1]) `fenced` only while KEYS[1] is in progress under the
 * token ARGV[2]; in mode `unheld` (begin failed open, so nobody was given the key) only while
 * KEYS[1] is absent; in mode `effect` there is no completion. Answers 1 when applied, 0 when the
 * key was not ours.
 */
const COMMIT = `
local mode = ARGV[1]
if mode ~= 'effect' then
  local stored = redis.call('GET', KEYS[1])
  if mode == 'unheld' and stored then return 0 end
  if mode == 'fenced' then
    if not stored then return 0 end
    local entry = cjson.decode(stored)
    if entry.s ~= 'p' or entry.t ~= ARGV[2] then return 0 end
  end
end
for _, command in ipairs(cjson.decode(ARGV[3])) do redis.call(unpack(command)) end
if mode ~= 'effect' then redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5]) end
return 1`;

interface IdempotencyCommands {
  mcpTxIdemBegin(key: string, fingerprint: string, ttlMs: number, token: string): Promise<[string, string?]>;
  mcpTxIdemRelease(key: string, token: string): Promise<number>;
  mcpTxIdemCommit(
    key: string,
    mode: 'effect' | 'fenced' | 'unheld',
    token: string,
    effect: string,
    record: string,
    ttlMs: number,
  ): Promise<number>;
}

/** What the `begin` script answered, as an outcome; `token` is the one it took a new key with. */
function beginOutcome([status, stored]: [string, string?], token: string): BeginOutcome {
  if (status === 'completed')
    return { status, record: (JSON.parse(stored as string) as { r: IdempotencyRecord }).r };
  if (status === 'new') return { status, token };
  return { status: status as 'in_progress' | 'conflict' };
}

/** The stored form of a completed key. */
const completedEntry = (fingerprint: string, record: IdempotencyRecord) =>
  JSON.stringify({ f: fingerprint, s: 'c', r: record });

/**
 * An {@link IdempotencyStore} on Redis (ioredis), shared by every process that uses the same
 * `prefix`: `begin` is one Lua script (atomic across processes); in-progress records expire, so a
 * crashed holder does not block a key forever; completed records are kept for their TTL. Usable by
 * the client's `dedupe` and the server's `txTool`. When Redis fails, or does not answer within
 * `commandTimeoutMs` (down or stalled), calls fail with `MCP_TX_STORE_UNAVAILABLE` (retryable) — or,
 * with `failOpen: true`, go ahead without deduplication; they work again once Redis answers, on the
 * same client (a `begin` that failed lets go of the key should its script still run late). It is
 * also an {@link EffectStore} of {@link RedisEffect}s: a `txTool` handler that answers
 * `withEffect(result, commands)` has its Redis writes applied in one script with the key's
 * completion, fenced by the holder's token — exactly once even when the server is killed mid-call
 * (`commit` never fails open: the effect has nowhere else to go; after a `begin` that failed open it
 * commits only while the key is still absent, else answers `false` and applies nothing). A commit
 * that timed out may still be applied when Redis answers late — with its key's record, so a retry
 * finds the key completed. On a Redis Cluster, see {@link RedisEffect}.
 *
 * @example
 * import { Redis } from 'ioredis';
 * const store = redisIdempotencyStore(new Redis(process.env.REDIS_URL), { prefix: 'shop:idem:' });
 * const tx = createMcpTx(client, { dedupe: { store } });
 */
export function redisIdempotencyStore(
  redis: Redis,
  options: RedisStoreOptions = {},
): IdempotencyStore & EffectStore<RedisEffect> {
  if (typeof (redis as Partial<Redis> | null)?.defineCommand !== 'function') {
    throw validationError('redis', 'must be an ioredis client');
  }
  const { prefix, windowMs, failOpen, commandTimeoutMs } = parseOrThrow(
    RedisStoreOptionsSchema,
    options,
    'options',
  );
  if (!('mcpTxIdemBegin' in redis)) {
    redis.defineCommand('mcpTxIdemBegin', { numberOfKeys: 1, lua: BEGIN });
    redis.defineCommand('mcpTxIdemRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('mcpTxIdemCommit', { numberOfKeys: 1, lua: COMMIT });
  }
  const commands = redis as unknown as Redis & IdempotencyCommands;
  /** `operation`, failing with `MCP_TX_STORE_UNAVAILABLE` when Redis fails or is slower than `commandTimeoutMs`. */
  const bounded = <T>(operation: Promise<T>): Promise<T> =>
    withinDeadline(operation, commandTimeoutMs, 'Idempotency store');
  const orOpen = <T>(operation: Promise<T>, whenOpen: T): Promise<T> =>
    failOpen ? operation.catch(() => whenOpen) : operation;
  /** A write whose outcome does not matter, only that it is done (or, failing open, given up). */
  const write = (operation: Promise<unknown>): Promise<void> =>
    orOpen(
      bounded(operation).then(() => undefined),
      undefined,
    );
  /** After a `begin` that failed, lets go of the key should its script still take it (Redis late, not down). */
  const letGoLate = (key: string, token: string, taking: Promise<[string, string?]>) =>
    taking
      .then(([status]) => (status === 'new' ? commands.mcpTxIdemRelease(prefix + key, token) : 0))
      .catch(() => undefined);

  return {
    windowMs,
    begin(key, fingerprint, ttlMs) {
      const token = newRequestId();
      const taking = commands.mcpTxIdemBegin(prefix + key, fingerprint, ttlMs, token);
      const outcome = bounded(taking.then((answer) => beginOutcome(answer, token)));
      outcome.catch(() => letGoLate(key, token, taking));
      return orOpen(outcome, { status: 'new' });
    },
    complete: (key, fingerprint, record, ttlMs) =>
      write(redis.set(prefix + key, completedEntry(fingerprint, record), 'PX', ttlMs)),
    release: (key, token) => write(commands.mcpTxIdemRelease(prefix + key, token ?? '')),
    async commit(effect, completion) {
      const commands = parseOrThrow(RedisEffectSchema, effect, 'effect');
      if (completion !== undefined && completion.token === undefined && !failOpen)
        throw validationError('completion.token', 'must be the token begin answered');
      return bounded(commitEffect(commands, completion));
    },
  };

  async function commitEffect(effect: RedisEffect, completion?: Completion): Promise<boolean> {
    const script = JSON.stringify(effect.map((command) => command.map(String)));
    if (completion === undefined)
      return (await commands.mcpTxIdemCommit(prefix, 'effect', '', script, '', 0)) === 1;
    const { key, fingerprint, record, ttlMs, token } = completion;
    const entry = completedEntry(fingerprint, record);
    const mode = token === undefined ? 'unheld' : 'fenced';
    return (await commands.mcpTxIdemCommit(prefix + key, mode, token ?? '', script, entry, ttlMs)) === 1;
  }
}
