import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { TxMeta } from '../core/types.js';
import { sameArguments } from './fingerprint.js';

/**
 * How long a key's record is kept when neither the caller nor the store says (ms): 5 minutes.
 *
 * @example
 * await store.complete(key, print, record, store.windowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS);
 */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 300_000;

/**
 * What an idempotency store keeps for a finished key: the result a repeat of the call gets (with
 * the client's `data` and `meta` when the client stored it), or, when failures are cached, the
 * failure. Plain JSON, so any store can serialize it.
 *
 * @example
 * const record: IdempotencyRecord = { kind: 'result', result: { content: [{ type: 'text', text: 'ok' }] } };
 * await store.complete('charge:order-42', fingerprint(args), record, 300_000);
 */
export type IdempotencyRecord =
  | {
      readonly kind: 'result';
      readonly result: CallToolResult;
      readonly data?: unknown;
      readonly meta?: TxMeta;
    }
  | { readonly kind: 'failure'; readonly code: string; readonly message: string; readonly meta?: TxMeta };

/**
 * The answer of {@link IdempotencyStore.begin}: `new` (the caller now holds the key and runs the
 * call), `in_progress` (another holder is running it), `completed` (its stored record) or
 * `conflict` (the key was used with other arguments).
 *
 * @example
 * const outcome = await store.begin(key, fingerprint(args), 30_000);
 * if (outcome.status === 'completed') return outcome.record;
 */
export type BeginOutcome =
  | {
      readonly status: 'new';
      /** Names this holding of the key, for a store that fences {@link EffectStore.commit} with it. */
      readonly token?: string;
    }
  | { readonly status: 'in_progress' }
  | { readonly status: 'completed'; readonly record: IdempotencyRecord }
  | { readonly status: 'conflict' };

/**
 * How an idempotency store is doing, for a health report: what {@link IdempotencyStore.stats}
 * answers. `evictedEarly > 0` means the dedupe window was shortened: keys were dropped to make room
 * before their TTL ended, and a retry of one of them ran (or would run) the call again.
 *
 * @example
 * const stats = store.stats?.();
 * if (stats && stats.evictedEarly > 0) console.warn(`${stats.evictedEarly} keys evicted before their window ended`);
 */
export interface IdempotencyStoreStats {
  /** How many keys the store holds now (in progress or completed). */
  readonly entries: number;
  /** How many keys were evicted to make room before their TTL ended, since the store was made. */
  readonly evictedEarly: number;
  /** The shortest time (ms) a key evicted early had been kept; absent while none was. */
  readonly shortestKeptMs?: number;
}

/**
 * Where idempotency keys live: one interface for the client's `dedupe` and the server's `txTool`,
 * in memory or shared (Redis).
 *
 * - `begin` is atomic. The first caller for a key gets `new` and holds an in-progress record that
 *   expires after `ttlMs`, so a crashed holder does not block the key forever; later callers get
 *   `in_progress` or `completed`; a caller whose `fingerprint` (of the arguments) differs gets
 *   `conflict`.
 * - `complete` stores the record, under the arguments' fingerprint, for `ttlMs` (the dedupe window).
 * - `release` drops an in-progress record, so that a failed call may run again; given the `token`
 *   its `begin` answered, only while that caller still holds the key (not a hold taken over after
 *   the first expired).
 *
 * @example
 * const outcome = await store.begin('charge:order-42', fingerprint(args), 30_000);
 * if (outcome.status === 'new') {
 *   try { await store.complete('charge:order-42', fingerprint(args), record, 300_000); }
 *   catch (error) { await store.release('charge:order-42', outcome.token); throw error; }
 * }
 */
export interface IdempotencyStore {
  /** How long completed records are kept when the caller does not say (ms). */
  readonly windowMs?: number;
  /**
   * Atomically takes `key` for a call with these arguments (`fingerprint`), or says who has it. A
   * `new` key is held in progress for `ttlMs`.
   */
  begin(key: string, fingerprint: string, ttlMs: number): Promise<BeginOutcome>;
  /** Stores the finished call's `record` under `key` for `ttlMs`, replacing the in-progress record. */
  complete(key: string, fingerprint: string, record: IdempotencyRecord, ttlMs: number): Promise<void>;
  /**
   * Drops `key` if it is still in progress (a completed record stays), so that the call may run
   * again. With the `token` of the `new` outcome, only if that hold is still the key's.
   */
  release(key: string, token?: string): Promise<void>;
  /**
   * Optional: how the store is doing (its size, keys evicted before their window ended). The
   * in-memory store has it; a health monitor reads it when present.
   */
  stats?(): IdempotencyStoreStats;
}

/**
 * The key an {@link EffectStore.commit} records as completed, in the same step as the effect.
 *
 * @example
 * const outcome = await store.begin(key, print, 30_000);
 * if (outcome.status === 'new')
 *   await store.commit(effect, { key, fingerprint: print, record, ttlMs: 300_000, token: outcome.token });
 */
export interface Completion {
  readonly key: string;
  readonly fingerprint: string;
  readonly record: IdempotencyRecord;
  readonly ttlMs: number;
  /** The `token` of the `new` outcome that made this caller the key's holder. */
  readonly token?: string;
}

/**
 * A store that can apply a tool's effect in one atomic step with the record of its key — and only
 * while the caller still holds the key. A process killed before that step leaves neither the effect
 * nor the record, so a retry may run the handler again without doing the effect twice; a holder
 * whose in-progress record expired (and was taken over) gets `false` and applies nothing. This is
 * what makes an effect exactly-once across a crash, where `complete` after the effect cannot.
 *
 * @example
 * const committed = await store.commit([['HINCRBY', 'balances', 'alice', '500']], completion);
 */
export interface EffectStore<Effect> {
  /** Applies `effect` and, with a `completion`, records its key as completed. `false`: the key was not ours, nothing applied. */
  commit(effect: Effect, completion?: Completion): Promise<boolean>;
}

/**
 * Whether `store` can commit effects ({@link EffectStore}).
 *
 * @example
 * if (!isEffectStore(store)) throw new Error('withEffect needs a redisIdempotencyStore');
 */
export function isEffectStore(store: IdempotencyStore): store is IdempotencyStore & EffectStore<unknown> {
  return typeof (store as Partial<EffectStore<unknown>>).commit === 'function';
}

/**
 * What `begin` answers for a key the store already holds: a conflict when the arguments differ
 * ({@link sameArguments}), else the stored outcome, or in progress while the holder has not completed it.
 *
 * @example
 * const held = entries.get(key);
 * if (held !== undefined) return heldKeyOutcome(held, fingerprint);
 */
export function heldKeyOutcome(
  held: { readonly fingerprint: string; readonly record?: IdempotencyRecord },
  fingerprint: string,
): BeginOutcome {
  if (!sameArguments(held.fingerprint, fingerprint)) return { status: 'conflict' };
  return held.record === undefined ? { status: 'in_progress' } : { status: 'completed', record: held.record };
}
