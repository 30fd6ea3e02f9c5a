import { LRUCache } from 'lru-cache';
import * as z from 'zod';
import { parseOrThrow } from '../config/validators.js';
import { comparesFingerprintsLocally } from './fingerprint.js';
import { jsonLength } from './jsonLength.js';
import {
  type BeginOutcome,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  heldKeyOutcome,
  type IdempotencyRecord,
  type IdempotencyStore,
  type IdempotencyStoreStats,
} from './store.js';

/**
 * The default memory bound of {@link memoryIdempotencyStore}: 512 MiB, as the store estimates it.
 *
 * Sizing rule. The store estimates a key at 350 bytes (`ENTRY_OVERHEAD_BYTES`) + the key's and the
 * fingerprint's length + twice its record's JSON length; measured (`bench/memoryStoreSizing.bench.ts`,
 * Node 20, x64, 200 000 keys a shape) the estimate is 1.1 to 2.3 times the real heap, never under it:
 *
 * | record kept | JSON bytes | heap bytes/key | estimated |
 * |---|---:|---:|---:|
 * | server (`txTool`): small text result | 75 | 521 | 589 |
 * | client (`dedupe`): small result + data + meta | 308 | 792 | 1 064 |
 * | client: 4 KB text result + meta | 4 380 | 4 831 | 9 190 |
 * | client: 50 small objects + meta | 3 420 | 3 584 | 8 288 |
 * | client: 500 small numbers + meta | 4 092 | 4 784 | 8 834 |
 * | client: 1 000 non-Latin-1 characters + meta | 1 284 | 2 737 | 2 998 |
 *
 * The window holds while `maxBytes ≥ windowMs / 1000 × keyed calls per second × estimated bytes
 * per key`. With small results (~1.1 KB estimated a key) 512 MiB keeps the 5-minute window up to
 * ~1 600 keyed calls/s (2 000/s: 4 minutes), in ~0.4 GB of real heap at full. Above that raise
 * `maxBytes`, shorten `windowMs`, or share a Redis store; `stats().evictedEarly` and the
 * `MCP_TX_WINDOW_SHORTENED` warning say when the bound was hit. Nothing is allocated up front: the
 * bound only caps growth.
 *
 * @example
 * // 3 000 keyed calls/s of ~1.1 KB over 5 minutes: 300 × 3 000 × 1 100 ≈ 1 GB
 * const store = memoryIdempotencyStore({ maxBytes: 2 ** 30 });
 */
export const DEFAULT_MEMORY_STORE_MAX_BYTES = 512 * 2 ** 20;

/**
 * What one key costs the store besides its key, fingerprint and record, in estimated bytes
 * (the entry, lru-cache's index and map slot; see {@link DEFAULT_MEMORY_STORE_MAX_BYTES}).
 */
export const ENTRY_OVERHEAD_BYTES = 350;

/** Estimated heap bytes per JSON character of a record (measured 0.9 to 1.8: see the table above). */
const BYTES_PER_RECORD_JSON_CHAR = 2;

const MemoryStoreOptionsSchema = z.strictObject({
  windowMs: z.number().int().positive('must be greater than 0').default(DEFAULT_IDEMPOTENCY_WINDOW_MS),
  maxBytes: z
    .number()
    .int('must be a whole number of bytes')
    .min(64 * 1024, 'must be at least 65536 (64 KiB)')
    .default(DEFAULT_MEMORY_STORE_MAX_BYTES),
  maxEntries: z.number().int().positive('must be greater than 0').optional(),
  clock: z
    .custom<() => number>((value) => typeof value === 'function', 'must be a function () => number')
    .optional(),
});

/**
 * Options of {@link memoryIdempotencyStore}, all optional:
 *
 * - `windowMs` (300 000): how long completed records are kept when the caller does not say.
 * - `maxBytes` (512 MiB, {@link DEFAULT_MEMORY_STORE_MAX_BYTES}, which gives the sizing rule): the
 *   most memory the keys may take, as estimated per key; past it the least recently used key goes.
 * - `maxEntries` (no bound): the most keys kept, on top of `maxBytes`.
 * - `clock` (`performance.now`): `() => number` in ms, for expiry (a virtual clock in tests).
 *
 * @example
 * const store = memoryIdempotencyStore({ windowMs: 60_000, maxBytes: 512 * 2 ** 20 });
 */
export type MemoryStoreOptions = z.input<typeof MemoryStoreOptionsSchema>;

/**
 * What {@link memoryIdempotencyStore}'s `stats()` says: the common {@link IdempotencyStoreStats}
 * plus the store's bounds and its estimated size.
 *
 * @example
 * const { evictedEarly, bytes, maxBytes } = store.stats();
 * if (evictedEarly > 0) console.warn(`dedupe window shortened: ${bytes}/${maxBytes} bytes`);
 */
export interface MemoryStoreStats extends IdempotencyStoreStats {
  /** The estimated bytes the keys take now. */
  readonly bytes: number;
  readonly maxBytes: number;
  readonly maxEntries?: number;
  readonly windowMs: number;
}

/**
 * The store {@link memoryIdempotencyStore} returns: an {@link IdempotencyStore} with its `size`
 * and `stats()`.
 *
 * @example
 * const store: MemoryIdempotencyStore = memoryIdempotencyStore();
 * console.log(store.size, store.stats().evictedEarly);
 */
export interface MemoryIdempotencyStore extends IdempotencyStore {
  /** How many keys the store holds (expired ones not yet swept included). */
  readonly size: number;
  stats(): MemoryStoreStats;
}

interface Entry {
  readonly fingerprint: string;
  readonly record?: IdempotencyRecord;
  /** The holder's token while in progress. */
  readonly token?: string;
  /** When it was stored and for how long (ms, on the store's clock): its eviction before then is early. */
  readonly storedAt: number;
  readonly ttlMs: number;
}

/** The code of the warning a store emits (once) when it first evicts a key before its window ended. */
export const WINDOW_SHORTENED_WARNING = 'MCP_TX_WINDOW_SHORTENED';

/**
 * An in-process {@link IdempotencyStore} on `lru-cache`: bounded by memory (`maxBytes`, estimated
 * per key), optionally by `maxEntries`, least recently used first out, and by time (each record
 * expires after its TTL; `windowMs` is the default window). Expiry is lazy: no timer per key,
 * nothing that keeps the process alive, nothing allocated up front.
 *
 * A key evicted to make room before its TTL ended shortens the dedupe window: a retry of it would
 * run the call again. Each such early eviction is counted (`stats().evictedEarly`); the first one
 * of the store is also reported with `process.emitWarning` (code `MCP_TX_WINDOW_SHORTENED`). Size
 * `maxBytes` by the rule of {@link DEFAULT_MEMORY_STORE_MAX_BYTES}. In-progress keys are evicted like
 * the others, so keep the bound well above the keyed calls you run at once.
 *
 * Its fingerprints never leave the process, so `dedupe` gives it short arguments' canonical JSON
 * rather than their hash (`fingerprintFor`); it tells the same arguments by either kind.
 *
 * @example
 * const store = memoryIdempotencyStore({ windowMs: 60_000, maxBytes: 64 * 2 ** 20 });
 * tx.attempt$('charge', args, { idempotencyKey: 'order-42' }).pipe(dedupe(store));
 * store.stats(); // { entries: 1, evictedEarly: 0, bytes: 1123, maxBytes: 67108864, windowMs: 60000 }
 */
export function memoryIdempotencyStore(options: MemoryStoreOptions = {}): MemoryIdempotencyStore {
  const { windowMs, maxBytes, maxEntries, clock } = parseOrThrow(
    MemoryStoreOptionsSchema,
    options,
    'options',
  );
  const now = clock === undefined ? () => performance.now() : fromOne(clock);
  const bounds = `maxBytes ${maxBytes}${maxEntries === undefined ? '' : `, maxEntries ${maxEntries}`}`;
  let evictedEarly = 0;
  let shortestKeptMs: number | undefined;
  /** A key dropped `keptMs` after it was stored, before its `ttlMs` ended: the window was shortened. */
  const droppedEarly = (keptMs: number, ttlMs: number) => {
    evictedEarly += 1;
    shortestKeptMs = Math.min(shortestKeptMs ?? keptMs, keptMs);
    if (evictedEarly === 1) warnWindowShortened(keptMs, ttlMs, entries.size, bounds);
  };
  const entries = new LRUCache<string, Entry>({
    maxSize: maxBytes,
    ttlAutopurge: false,
    ttlResolution: 0,
    perf: { now },
    dispose: (entry, _key, reason) => {
      if (reason !== 'evict') return;
      const keptMs = now() - entry.storedAt;
      if (keptMs < entry.ttlMs) droppedEarly(keptMs, entry.ttlMs); // else expired, not yet swept: nothing lost
    },
  });

  /** Stores `entry`, then evicts the least recently used keys over the bounds. */
  const store = (key: string, entry: Entry) => {
    const size = estimateBytes(entry, key);
    if (size > maxBytes) droppedEarly(0, entry.ttlMs); // lru-cache keeps no entry larger than maxSize
    entries.set(key, entry, { ttl: entry.ttlMs, size });
    if (maxEntries !== undefined) while (entries.size > maxEntries) entries.pop();
  };

  let holds = 0;
  return comparesFingerprintsLocally({
    windowMs,
    get size() {
      return entries.size;
    },
    stats(): MemoryStoreStats {
      return {
        entries: entries.size,
        evictedEarly,
        ...(shortestKeptMs === undefined ? {} : { shortestKeptMs: Math.round(shortestKeptMs) }),
        bytes: entries.calculatedSize,
        maxBytes,
        ...(maxEntries === undefined ? {} : { maxEntries }),
        windowMs,
      };
    },
    async begin(key, fingerprint, ttlMs): Promise<BeginOutcome> {
      const entry = entries.get(key);
      if (entry === undefined) {
        const token = String(++holds);
        store(key, { fingerprint, token, storedAt: now(), ttlMs });
        return { status: 'new', token };
      }
      return heldKeyOutcome(entry, fingerprint);
    },
    async complete(key, fingerprint, record, ttlMs) {
      store(key, { fingerprint, record, storedAt: now(), ttlMs });
    },
    async release(key, token) {
      const entry = entries.peek(key);
      if (entry !== undefined && entry.record === undefined && (token === undefined || token === entry.token))
        entries.delete(key);
    },
  });
}

/** What a record JSON cannot write (a cycle, say) is estimated at. */
const UNWRITABLE_RECORD_BYTES = 64 * 1024;

/**
 * The estimated heap bytes of one key: {@link ENTRY_OVERHEAD_BYTES}, the key and fingerprint
 * strings, and twice the record's JSON length ({@link jsonLength}; 64 KiB for a record JSON cannot write).
 */
function estimateBytes(entry: Entry, key: string): number {
  const recordLength = entry.record === undefined ? 0 : jsonLength(entry.record);
  const recordBytes =
    recordLength === undefined ? UNWRITABLE_RECORD_BYTES : recordLength * BYTES_PER_RECORD_JSON_CHAR;
  return ENTRY_OVERHEAD_BYTES + key.length + entry.fingerprint.length + recordBytes;
}

function warnWindowShortened(keptMs: number, ttlMs: number, size: number, bounds: string): void {
  globalThis.process?.emitWarning?.(
    `mcp-tx: the in-memory idempotency store dropped a key ${Math.round(keptMs)} ms after storing it, ` +
      `before its ${ttlMs} ms window ended (${size} keys held; bound: ${bounds}): a retry with that key ` +
      'would run the call again. Raise maxBytes (≥ window s × keyed calls/s × ~1.1 KB a small result), ' +
      'shorten windowMs, or share a redisIdempotencyStore. Early evictions are counted in ' +
      'store.stats().evictedEarly; this warning is emitted once per store.',
    { code: WINDOW_SHORTENED_WARNING },
  );
}

/**
 * `clock` shifted to read 1 at the start: lru-cache takes a start time of 0 for "no TTL", so an entry
 * set while a virtual clock reads 0 would never expire. Only differences count, so the shift is harmless.
 */
function fromOne(clock: () => number): () => number {
  const origin = clock();
  return () => clock() - origin + 1;
}
