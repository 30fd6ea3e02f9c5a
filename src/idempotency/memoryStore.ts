import { z } from 'zod';
import { parseOrThrow } from '../schemas.js';
import type { BeginOutcome, IdempotencyRecord, IdempotencyStore } from './store.js';

const MemoryStoreOptionsSchema = z.strictObject({
  windowMs: z.number().int().positive('must be greater than 0').default(300_000),
  maxEntries: z.number().int().positive('must be greater than 0').default(10_000),
  clock: z
    .custom<() => number>((value) => typeof value === 'function', 'must be a function () => number')
    .optional(),
});

/** Options of {@link memoryIdempotencyStore}. */
export type MemoryStoreOptions = z.input<typeof MemoryStoreOptionsSchema>;

interface Entry {
  readonly fingerprint: string;
  readonly record?: IdempotencyRecord;
  readonly expiresAt: number;
}

/** How many of the least recently used entries an insert looks at to drop expired ones. */
const SWEEP_PER_INSERT = 4;

/**
 * An in-process {@link IdempotencyStore}: bounded by `maxEntries` (least recently used first out)
 * and by time (each record expires after its TTL; `windowMs` is the default window). Expiry is
 * lazy: no timer per key, nothing that keeps the process alive. When full it evicts the least
 * recently used entry, in progress or not: size `maxEntries` well above the keyed calls you run at
 * once.
 *
 * @example
 * const store = memoryIdempotencyStore({ windowMs: 60_000, maxEntries: 50_000 });
 * tx.attempt$('charge', args, { idempotencyKey: 'order-42' }).pipe(dedupe(store));
 */
export function memoryIdempotencyStore(
  options: MemoryStoreOptions = {},
): IdempotencyStore & { readonly size: number } {
  const {
    windowMs,
    maxEntries,
    clock = Date.now,
  } = parseOrThrow(MemoryStoreOptionsSchema, options, 'options');
  const entries = new Map<string, Entry>();

  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    entries.delete(key);
    if (entry.expiresAt <= clock()) return undefined;
    entries.set(key, entry); // most recently used goes last
    return entry;
  };

  const put = (key: string, entry: Entry) => {
    entries.delete(key);
    entries.set(key, entry);
    sweep();
  };

  const sweep = () => {
    const now = clock();
    let looked = 0;
    for (const [key, entry] of entries) {
      if (looked++ >= SWEEP_PER_INSERT) break;
      if (entry.expiresAt <= now) entries.delete(key);
    }
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
  };

  return {
    windowMs,
    get size() {
      return entries.size;
    },
    async begin(key, fingerprint, ttlMs): Promise<BeginOutcome> {
      const entry = live(key);
      if (entry === undefined) {
        put(key, { fingerprint, expiresAt: clock() + ttlMs });
        return { status: 'new' };
      }
      if (entry.fingerprint !== fingerprint) return { status: 'conflict' };
      return entry.record === undefined
        ? { status: 'in_progress' }
        : { status: 'completed', record: entry.record };
    },
    async complete(key, fingerprint, record, ttlMs) {
      put(key, { fingerprint, record, expiresAt: clock() + ttlMs });
    },
    async release(key) {
      if (entries.get(key)?.record === undefined) entries.delete(key);
    },
  };
}
