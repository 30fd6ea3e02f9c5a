import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TxErrorCode } from '../../../src/core/errors.js';
import { type EventStore, MemoryEventStore } from '../../../src/events/eventStore.js';
import { JsonlEventStore } from '../../../src/events/jsonlEventStore.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-tx-events-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const replay = (store: EventStore, filter?: Parameters<EventStore['read$']>[0]) =>
  lastValueFrom(store.read$(filter).pipe(toArray()));

describe.each([
  ['MemoryEventStore', () => new MemoryEventStore()],
  ['JsonlEventStore', () => new JsonlEventStore(join(dir, 'events.jsonl'))],
])('%s', (_name, makeStore) => {
  it('replays appended events in order, filtered by type, transaction, request, tool and position', async () => {
    const store = makeStore();
    const first = await store.append({ type: 'A', transactionId: 't1', tool: 'x', requestId: 'r1' });
    await store.append({ type: 'B', transactionId: 't1', tool: 'y', requestId: 'r2', data: { n: 2 } });
    await store.append({ type: 'A', transactionId: 't2', tool: 'x', requestId: 'r3' });
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B', 'A']);
    expect((await replay(store, { transactionId: 't1' })).map((event) => event.requestId)).toEqual([
      'r1',
      'r2',
    ]);
    expect((await replay(store, { type: ['B'], tool: 'y' }))[0]?.data).toEqual({ n: 2 });
    expect((await replay(store, { afterId: first.id })).map((event) => event.requestId)).toEqual([
      'r2',
      'r3',
    ]);
    expect(first.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number.isNaN(Date.parse(first.at))).toBe(false);
    if (store instanceof JsonlEventStore) await store.close();
  });
});

describe('JsonlEventStore', () => {
  it('keeps events across instances (a restart) and writes one JSON object a line', async () => {
    const path = join(dir, 'events.jsonl');
    const writer = new JsonlEventStore(path, { fsync: true });
    await Promise.all(Array.from({ length: 20 }, (_, n) => writer.append({ type: 'E', data: { n } })));
    await writer.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(20);
    const reader = new JsonlEventStore(path);
    expect((await replay(reader)).map((event) => event.data?.n)).toEqual(
      Array.from({ length: 20 }, (_, n) => n),
    );
  });

  it('skips a torn last line on replay and cuts it off before the next append', async () => {
    const path = join(dir, 'events.jsonl');
    const store = new JsonlEventStore(path);
    await store.append({ type: 'Kept' });
    await store.close();
    await appendFile(path, '{"type":"Torn","id":"0');
    const reopened = new JsonlEventStore(path);
    expect((await replay(reopened)).map((event) => event.type)).toEqual(['Kept']);
    await reopened.append({ type: 'After' });
    expect((await replay(reopened)).map((event) => event.type)).toEqual(['Kept', 'After']);
    await reopened.close();
  });

  it('cuts a torn line another writer left while this store had the file open, before appending', async () => {
    const path = join(dir, 'events.jsonl');
    const store = new JsonlEventStore(path);
    await store.append({ type: 'First' });
    await appendFile(path, '{"type":"TornByACrash","id":"0'); // another process died mid-write
    await store.append({ type: 'After' });
    expect((await replay(new JsonlEventStore(path))).map((event) => event.type)).toEqual(['First', 'After']);
    await store.close();
  });

  it('keeps every line whole when two instances in one process append large events at once', async () => {
    const path = join(dir, 'events.jsonl');
    const [a, b] = [new JsonlEventStore(path), new JsonlEventStore(path)];
    const blob = 'x'.repeat(600_000); // over the 512 KiB a Node file write is cut into
    await Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        (n % 2 === 0 ? a : b).append({ type: 'Large', data: { n, blob } }),
      ),
    );
    await Promise.all([a.close(), b.close()]);
    const events = await replay(new JsonlEventStore(path));
    expect(events.map((event) => event.data?.n)).toEqual(Array.from({ length: 10 }, (_, n) => n));
    expect(events.every((event) => event.data?.blob === blob)).toBe(true);
  });

  it('reads the file when subscribed, afresh each time; a replay never subscribed reads nothing', async () => {
    const path = join(dir, 'events.jsonl');
    await writeFile(path, 'not json\n');
    const unhandled: unknown[] = [];
    const noteUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', noteUnhandled);
    const store = new JsonlEventStore(path);
    store.read$(); // never subscribed
    const replay$ = store.read$();
    await expect(lastValueFrom(replay$)).rejects.toThrow(`${path}:1`);
    await writeFile(path, '');
    await store.append({ type: 'Repaired' });
    expect((await lastValueFrom(replay$.pipe(toArray()))).map((event) => event.type)).toEqual(['Repaired']);
    await new Promise((resolve) => setImmediate(resolve)); // past the point where Node reports one
    process.off('unhandledRejection', noteUnhandled);
    expect(unhandled).toEqual([]);
    await store.close();
  });

  it('refuses an append made after close() with MCP_TX_STORE_UNAVAILABLE, and writes those made before', async () => {
    const path = join(dir, 'events.jsonl');
    const store = new JsonlEventStore(path);
    const before = store.append({ type: 'Before' });
    const closed = store.close();
    await expect(store.append({ type: 'After' })).rejects.toMatchObject({
      code: TxErrorCode.StoreUnavailable,
      retryable: false,
      message: `Event store ${path} is closed: append refused`,
    });
    await closed;
    expect((await before).type).toBe('Before');
    expect(await store.close()).toBeUndefined(); // closing again is harmless
    expect((await replay(store)).map((event) => event.type)).toEqual(['Before']);
  });

  it('names the line of a corrupt event in the middle of the log', async () => {
    const path = join(dir, 'events.jsonl');
    await writeFile(path, '{"type":"A","id":"1","at":"x"}\nnot json\n{"type":"B","id":"2","at":"x"}\n');
    await expect(replay(new JsonlEventStore(path))).rejects.toThrow(`${path}:2`);
  });

  it('names a bad path or option, before opening anything', () => {
    expect(() => new JsonlEventStore('')).toThrow(
      expect.objectContaining({ code: 'MCP_TX_VALIDATION', field: 'path' }),
    );
    expect(() => new JsonlEventStore('x', { fsync: 'yes' as never })).toThrow(
      expect.objectContaining({ field: 'options.fsync' }),
    );
  });

  it('replays nothing from a file that does not exist yet', async () => {
    expect(await replay(new JsonlEventStore(join(dir, 'none.jsonl')))).toEqual([]);
  });
});
