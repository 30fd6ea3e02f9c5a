import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { parseOrThrow } from '../config/validators.js';
import {
  type BeginOutcome,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  type IdempotencyRecord,
  type IdempotencyStore,
} from './store.js';

const MemoryStoreOptionsSchema = z.strictObject({
  windowMs: z.number().int().positive('must be greater than 0').default(DEFAULT_IDEMPOTENCY_WINDOW_MS),
  maxEntries: z.number().int().positive('must be greater than 0').default(10_000),
  clock: z
    .custom<() => number>((value) => typeof value === 'function', 'must be a function () => number')
    .optional(),
});

/**
 * Options of {@link memoryIdempotencyStore}, all optional:
 *
 * - `windowMs` (300 000): how long completed records are kept when the caller does not say.
 * - `maxEntries` (10 000): the most keys kept; past it the least recently used goes.
 * - `clock` (`performance.now`): `() => number` in ms, for expiry (a virtual clock in tests).
 *
 * @example
 * const store = memoryIdempotencyStore({ windowMs: 60_000, maxEntries: 100_000 });
 */
export type MemoryStoreOptions = z.input<typeof MemoryStoreOptionsSchema>;

interface Entry {
  readonly fingerprint: string;
  readonly record?: IdempotencyRecord;
  /** The holder's token while in progress. */
  readonly token?: string;
}

/**
 * An in-process {@link IdempotencyStore} on `lru-cache`: bounded by `maxEntries` (least recently
 * used first out) and by time (each record expires after its TTL; `windowMs` is the default
 * window). Expiry is lazy: no timer per key, nothing that keeps the process alive. When full it
 * evicts the least recently used entry, in progress or not: size `maxEntries` well above the keyed
 * calls you run at once.
 *
 * @example
 * const store = memoryIdempotencyStore({ windowMs: 60_000, maxEntries: 50_000 });
 * tx.attempt$('charge', args, { idempotencyKey: 'order-42' }).pipe(dedupe(store));
 */
export function memoryIdempotencyStore(
  options: MemoryStoreOptions = {},
): IdempotencyStore & { readonly size: number } {
  const { windowMs, maxEntries, clock } = parseOrThrow(MemoryStoreOptionsSchema, options, 'options');
  const entries = new LRUCache<string, Entry>({
    max: maxEntries,
    ttlAutopurge: false,
    ttlResolution: 0,
    ...(clock === undefined ? {} : { perf: { now: fromOne(clock) } }),
  });

  let holds = 0;
  return {
    windowMs,
    get size() {
      return entries.size;
    },
    async begin(key, fingerprint, ttlMs): Promise<BeginOutcome> {
      const entry = entries.get(key);
      if (entry === undefined) {
        const token = String(++holds);
        entries.set(key, { fingerprint, token }, { ttl: ttlMs });
        return { status: 'new', token };
      }
      if (entry.fingerprint !== fingerprint) return { status: 'conflict' };
      return entry.record === undefined
        ? { status: 'in_progress' }
        : { status: 'completed', record: entry.record };
    },
    async complete(key, fingerprint, record, ttlMs) {
      entries.set(key, { fingerprint, record }, { ttl: ttlMs });
    },
    async release(key, token) {
      const entry = entries.peek(key);
      if (entry !== undefined && entry.record === undefined && (token === undefined || token === entry.token))
        entries.delete(key);
    },
  };
}

/**
 * `clock` shifted to read 1 at the start: lru-cache takes a start time of 0 for "no TTL", so an entry
 * set while a virtual clock reads 0 would never expire. Only differences count, so the shift is harmless.
 */
function fromOne(clock: () => number): () => number {
  const origin = clock();
  return () => clock() - origin + 1;
}
