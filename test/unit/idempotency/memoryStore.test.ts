import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TxErrorCode } from '../../../src/core/errors.js';
import { memoryIdempotencyStore } from '../../../src/idempotency/memoryStore.js';
import type { IdempotencyRecord } from '../../../src/idempotency/store.js';

const record = (text: string): IdempotencyRecord => ({ kind: 'failure', code: 'X', message: text });

function clocked(options: { windowMs?: number; maxEntries?: number } = {}) {
  let now = 1_000;
  const store = memoryIdempotencyStore({ ...options, clock: () => now });
  return { store, advance: (ms: number) => (now += ms) };
}

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
    );
  });

  it('rejects bad options, naming the field', () => {
    expect(() => memoryIdempotencyStore({ maxEntries: 0 })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.maxEntries' }),
    );
  });
});
