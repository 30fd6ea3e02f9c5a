import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { TxErrorCode } from '../../../src/core/errors.js';
import { fingerprint, fingerprintFor } from '../../../src/idempotency/fingerprint.js';
import {
  DEFAULT_MEMORY_STORE_MAX_BYTES,
  type MemoryStoreOptions,
  memoryIdempotencyStore,
} from '../../../src/idempotency/memoryStore.js';
import type { IdempotencyRecord } from '../../../src/idempotency/store.js';
import { fuzz } from '../core/fuzz.js';

const record = (text: string): IdempotencyRecord => ({ kind: 'failure', code: 'X', message: text });

function clocked(options: Omit<MemoryStoreOptions, 'clock'> = {}) {
  let now = 1_000;
  const store = memoryIdempotencyStore({ ...options, clock: () => now });
  return { store, advance: (ms: number) => (now += ms) };
}

let warn: MockInstance<typeof process.emitWarning>;
beforeEach(() => {
  warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
});
afterEach(() => {
  warn.mockRestore();
});

/** The MCP_TX_WINDOW_SHORTENED warnings emitted so far. */
const windowWarnings = () =>
  warn.mock.calls.filter(([, options]) => (options as { code?: string })?.code === 'MCP_TX_WINDOW_SHORTENED');

describe('memoryIdempotencyStore', () => {
  it('gives "new" to exactly one of many concurrent callers of a key', async () => {
    const { store } = clocked();
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => store.begin('k', 'f', 1_000)));
    expect(outcomes.filter((outcome) => outcome.status === 'new')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome.status === 'in_progress')).toHaveLength(49);
  });

  it('answers completed with the record, conflict for other arguments, and forgets after the TTL', async () => {
    const { store, advance } = clocked();
    await store.begin('k', 'f', 1_000);
    await store.complete('k', 'f', record('done'), 5_000);
    expect(await store.begin('k', 'f', 1_000)).toEqual({ status: 'completed', record: record('done') });
    expect(await store.begin('k', 'other', 1_000)).toEqual({ status: 'conflict' });
    advance(4_999);
    expect((await store.begin('k', 'f', 1_000)).status).toBe('completed');
    advance(2);
    expect(await store.begin('k', 'other', 1_000)).toEqual({ status: 'new', token: expect.any(String) });
  });

  it('compares a local fingerprint (the canonical JSON dedupe gives it) with a hash of the same arguments', async () => {
    const { store } = clocked();
    const local = fingerprintFor(store, { n: 1 });
    expect(local).toBe('{"n":1}');
    await store.begin('k', fingerprint({ n: 1 }), 1_000);
    expect((await store.begin('k', local, 1_000)).status).toBe('in_progress');
    await store.complete('k', local, record('done'), 5_000);
    expect(await store.begin('k', fingerprint({ n: 1 }), 1_000)).toEqual({
      status: 'completed',
      record: record('done'),
    });
    expect(await store.begin('k', fingerprintFor(store, { n: 2 }), 1_000)).toEqual({ status: 'conflict' });
    expect(await store.begin('k', fingerprint({ n: 2 }), 1_000)).toEqual({ status: 'conflict' });
  });

  it('lets an in-progress record expire, so a crashed holder does not block the key', async () => {
    const { store, advance } = clocked();
    await store.begin('k', 'f', 100);
    expect((await store.begin('k', 'f', 100)).status).toBe('in_progress');
    advance(101);
    expect((await store.begin('k', 'f', 100)).status).toBe('new');
  });

  it('expires entries set while an injected clock reads 0', async () => {
    let now = 0;
    const store = memoryIdempotencyStore({ clock: () => now });
    await store.begin('k', 'f', 100);
    now = 101;
    expect((await store.begin('k', 'f', 100)).status).toBe('new');
  });

  it('release with a token drops only the hold that token names, not one taken over after it expired', async () => {
    const { store, advance } = clocked();
    const first = await store.begin('k', 'f', 100);
    advance(101);
    const second = await store.begin('k', 'f', 100);
    expect(second).toMatchObject({ status: 'new' });
    await store.release('k', (first as { token: string }).token); // the expired holder, late
    expect((await store.begin('k', 'f', 100)).status).toBe('in_progress');
    await store.release('k', (second as { token: string }).token);
    expect((await store.begin('k', 'f', 100)).status).toBe('new');
  });

  it('release drops an in-progress record but never a completed one', async () => {
    const { store } = clocked();
    await store.begin('a', 'f', 1_000);
    await store.release('a');
    expect((await store.begin('a', 'f', 1_000)).status).toBe('new');
    await store.complete('a', 'f', record('r'), 1_000);
    await store.release('a');
    expect((await store.begin('a', 'f', 1_000)).status).toBe('completed');
  });

  it('is bounded: the least recently used entry goes first', async () => {
    const { store } = clocked({ maxEntries: 3 });
    for (const key of ['a', 'b', 'c']) await store.complete(key, 'f', record(key), 60_000);
    await store.begin('a', 'f', 1_000); // touch a: b is now the oldest
    await store.complete('d', 'f', record('d'), 60_000);
    expect(store.size).toBe(3);
    expect((await store.begin('b', 'f', 1_000)).status).toBe('new');
    expect((await store.begin('a', 'f', 1_000)).status).toBe('completed');
  });

  it('stays within maxEntries whatever the sequence of operations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('begin', 'complete', 'release'), fc.integer({ min: 0, max: 30 })), {
          maxLength: 200,
        }),
        async (operations) => {
          const { store, advance } = clocked({ maxEntries: 10 });
          for (const [operation, key] of operations) {
            advance(7);
            if (operation === 'begin') await store.begin(`k${key}`, 'f', 50);
            else if (operation === 'complete') await store.complete(`k${key}`, 'f', record('r'), 100);
            else await store.release(`k${key}`);
            expect(store.size).toBeLessThanOrEqual(10);
          }
        },
      ),
      fuzz(100),
    );
  });

  it('rejects bad options, naming the field', () => {
    expect(() => memoryIdempotencyStore({ maxEntries: 0 })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.maxEntries' }),
    );
    expect(() => memoryIdempotencyStore({ maxBytes: 1_000 })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.maxBytes' }),
    );
  });
});

describe('memoryIdempotencyStore: the window and the memory bound (D2)', () => {
  /** A completed key as `dedupe` keeps it: a small tool result with its data and meta. */
  const complete = (store: ReturnType<typeof memoryIdempotencyStore>, n: number) => {
    const key = `charge:order-${n}`;
    const print = fingerprint({ n });
    const kept: IdempotencyRecord = {
      kind: 'result',
      result: { content: [{ type: 'text', text: JSON.stringify({ chargeId: `ch-${n}` }) }] },
      data: { chargeId: `ch-${n}` },
    };
    return store.begin(key, print, 30_000).then(() => store.complete(key, print, kept, 300_000));
  };

  it('keeps a completed key for its whole window through 10 000 other keys, by default', async () => {
    const { store, advance } = clocked();
    await complete(store, 0);
    for (let n = 1; n <= 10_000; n++) await complete(store, n);
    advance(299_000);
    expect((await store.begin('charge:order-0', fingerprint({ n: 0 }), 30_000)).status).toBe('completed');
    expect(store.stats()).toMatchObject({ entries: 10_001, evictedEarly: 0 });
    expect(windowWarnings()).toEqual([]);
  });

  it('bounds the memory by default, allocating nothing up front', () => {
    const { store } = clocked();
    expect(store.stats()).toEqual({
      entries: 0,
      evictedEarly: 0,
      bytes: 0,
      maxBytes: DEFAULT_MEMORY_STORE_MAX_BYTES,
      windowMs: 300_000,
    });
  });

  it('counts each key evicted before its window ended, and warns once per store with MCP_TX_WINDOW_SHORTENED', async () => {
    const { store, advance } = clocked({ maxBytes: 64 * 1024 });
    for (let n = 0; n < 200; n++) {
      await complete(store, n);
      advance(10);
    }
    const { entries, evictedEarly, bytes, shortestKeptMs } = store.stats();
    expect(entries).toBeGreaterThan(50);
    expect(entries + evictedEarly).toBe(200);
    expect(bytes).toBeLessThanOrEqual(64 * 1024);
    expect(shortestKeptMs).toBeGreaterThan(0);
    expect(shortestKeptMs).toBeLessThan(300_000);
    expect((await store.begin('charge:order-0', fingerprint({ n: 0 }), 30_000)).status).toBe('new');
    expect(windowWarnings()).toHaveLength(1);
    expect(windowWarnings()[0]?.[0]).toMatch(
      /before its 300000 ms window ended .*maxBytes 65536.*stats\(\)\.evictedEarly/,
    );

    const other = clocked({ maxEntries: 1 }).store; // another store warns on its own
    await complete(other, 1);
    await complete(other, 2);
    expect(other.stats()).toMatchObject({ entries: 1, evictedEarly: 1, maxEntries: 1 });
    expect(windowWarnings()).toHaveLength(2);
  });

  it('does not count a key evicted after its window ended (expired, not yet swept)', async () => {
    const { store, advance } = clocked({ maxEntries: 2 });
    await store.complete('a', 'f', record('a'), 100);
    await store.complete('b', 'f', record('b'), 100);
    advance(101);
    await store.complete('c', 'f', record('c'), 100); // a goes: its window ended already
    expect(store.stats()).toMatchObject({ entries: 2, evictedEarly: 0 });
    await store.complete('d', 'f', record('d'), 100); // b too
    advance(50);
    await store.complete('e', 'f', record('e'), 100); // c goes 50 ms into its 100 ms
    expect(store.stats()).toMatchObject({ entries: 2, evictedEarly: 1, shortestKeptMs: 50 });
  });

  it('counts an in-progress key evicted early, and a record too large to keep at all', async () => {
    const { store } = clocked({ maxEntries: 1 });
    await store.begin('held', 'f', 30_000);
    await store.begin('other', 'f', 30_000);
    expect(store.stats().evictedEarly).toBe(1);

    const small = clocked({ maxBytes: 64 * 1024 }).store;
    await small.begin('big', 'f', 30_000);
    await small.complete('big', 'f', record('x'.repeat(40_000)), 300_000); // ~80 KB estimated
    expect(small.stats()).toMatchObject({ entries: 0, evictedEarly: 1, shortestKeptMs: 0 });
    expect((await small.begin('big', 'f', 30_000)).status).toBe('new');
  });

  it('counts without warning where there is no process.emitWarning', async () => {
    const emitWarning = process.emitWarning;
    Object.defineProperty(process, 'emitWarning', { value: undefined, configurable: true, writable: true });
    try {
      const { store } = clocked({ maxEntries: 1 });
      await store.complete('a', 'f', record('a'), 1_000);
      await store.complete('b', 'f', record('b'), 1_000);
      expect(store.stats().evictedEarly).toBe(1);
    } finally {
      Object.defineProperty(process, 'emitWarning', {
        value: emitWarning,
        configurable: true,
        writable: true,
      });
    }
  });

  it('stays within maxBytes, and never loses count of a key dropped early, whatever the operations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.constantFrom('begin', 'complete', 'release'),
            fc.integer({ min: 0, max: 60 }),
            fc.nat({ max: 3_000 }),
          ),
          { maxLength: 150 },
        ),
        async (operations) => {
          const maxBytes = 64 * 1024;
          const { store, advance } = clocked({ maxBytes });
          let evictedEarly = 0;
          for (const [operation, key, textLength] of operations) {
            advance(7);
            if (operation === 'begin') await store.begin(`k${key}`, 'f', 500);
            else if (operation === 'complete')
              await store.complete(`k${key}`, 'f', record('r'.repeat(textLength)), 1_000);
            else await store.release(`k${key}`);
            const stats = store.stats();
            expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
            expect(stats.evictedEarly).toBeGreaterThanOrEqual(evictedEarly);
            evictedEarly = stats.evictedEarly;
          }
          expect(windowWarnings().length).toBeLessThanOrEqual(1);
          warn.mockClear();
        },
      ),
      fuzz(100),
    );
  });
});
