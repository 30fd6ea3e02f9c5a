import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EventStore, MemoryEventStore } from '../../src/events/eventStore.js';
import { JsonlEventStore } from '../../src/events/jsonlEventStore.js';

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
