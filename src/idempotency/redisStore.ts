import type { Redis } from 'ioredis';
import { z } from 'zod';
import { TxError, TxErrorCode, validationError } from '../errors.js';
import { parseOrThrow } from '../schemas.js';
import type { BeginOutcome, IdempotencyRecord, IdempotencyStore } from './store.js';

const RedisStoreOptionsSchema = z.strictObject({
  prefix: z.string().min(1, 'must not be empty').default('mcp-tx:idem:'),
  windowMs: z.number().int().positive('must be greater than 0').default(300_000),
  failOpen: z.boolean().default(false),
});

/** Options of {@link redisIdempotencyStore}. */
export type RedisStoreOptions = z.input<typeof RedisStoreOptionsSchema>;

/**
 * Atomically: a missing key is taken (in progress, with a TTL) → `new`; another fingerprint →
 * `conflict`; in progress → `in_progress`; else the stored JSON → `completed`.
 */
const BEGIN = `
local stored = redis.call('GET', KEYS[1])
if not stored then
  redis.call('SET', KEYS[1], cjson.encode({ f = ARGV[1], s = 'p' }), 'PX', ARGV[2])
  return { 'new' }
end
local entry = cjson.decode(stored)
if entry.f ~= ARGV[1] then return { 'conflict' } end
if entry.s == 'p' then return { 'in_progress' } end
return { 'completed', stored }`;

/** Drops the key only while it is in progress (a completed record stays). */
const RELEASE = `
local stored = redis.call('GET', KEYS[1])
if stored and cjson.decode(stored).s == 'p' then return redis.call('DEL', KEYS[1]) end
return 0`;

interface IdempotencyCommands {
  mcpTxIdemBegin(key: string, fingerprint: string, ttlMs: number): Promise<[string, string?]>;
  mcpTxIdemRelease(key: string): Promise<number>;
}

/**
 * An {@link IdempotencyStore} on Redis (ioredis), shared by every process that uses the same
 * `prefix`: `begin` is one Lua script (atomic across processes); in-progress records expire, so a
 * crashed holder does not block a key forever; completed records are kept for their TTL. Usable by
 * the client's `dedupe` and the server's `txTool`. When Redis fails, calls fail with
 * `MCP_TX_STORE_UNAVAILABLE` (retryable) — or, with `failOpen: true`, go ahead without
 * deduplication.
 *
 * @example
 * import { Redis } from 'ioredis';
 * const store = redisIdempotencyStore(new Redis(process.env.REDIS_URL), { prefix: 'shop:idem:' });
 * const tx = createMcpTx(client, { dedupe: { store } });
 */
export function redisIdempotencyStore(redis: Redis, options: RedisStoreOptions = {}): IdempotencyStore {
  if (typeof (redis as Partial<Redis> | null)?.defineCommand !== 'function') {
    throw validationError('redis', 'must be an ioredis client');
  }
  const { prefix, windowMs, failOpen } = parseOrThrow(RedisStoreOptionsSchema, options, 'options');
  if (!('mcpTxIdemBegin' in redis)) {
    redis.defineCommand('mcpTxIdemBegin', { numberOfKeys: 1, lua: BEGIN });
    redis.defineCommand('mcpTxIdemRelease', { numberOfKeys: 1, lua: RELEASE });
  }
  const commands = redis as unknown as Redis & IdempotencyCommands;
  const guarded = <T>(operation: () => Promise<T>, whenOpen: T): Promise<T> =>
    operation().catch((error: unknown) => {
      if (failOpen) return whenOpen;
      throw new TxError(TxErrorCode.StoreUnavailable, `Idempotency store unavailable: ${String(error)}`, {
        retryable: true,
        cause: error,
      });
    });

  return {
    windowMs,
    begin: (key, fingerprint, ttlMs) =>
      guarded(
        async (): Promise<BeginOutcome> => {
          const [status, stored] = await commands.mcpTxIdemBegin(prefix + key, fingerprint, ttlMs);
          if (status === 'completed')
            return { status, record: (JSON.parse(stored as string) as { r: IdempotencyRecord }).r };
          return { status: status as 'new' | 'in_progress' | 'conflict' };
        },
        { status: 'new' },
      ),
    complete: (key, fingerprint, record, ttlMs) =>
      guarded(async () => {
        await redis.set(prefix + key, JSON.stringify({ f: fingerprint, s: 'c', r: record }), 'PX', ttlMs);
      }, undefined),
    release: (key) =>
      guarded(async () => {
        await commands.mcpTxIdemRelease(prefix + key);
      }, undefined),
  };
}
