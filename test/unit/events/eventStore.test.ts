import { appendFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
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
    expect(await store.verify()).toBe(0); // repaired: appends go on
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

/** A stored event's line, as JsonlEventStore writes it (no newline). */
const eventLine = (type: string, n: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id: `0190000${n}-0000-7000-8000-000000000000`,
    type,
    at: '2026-01-01T00:00:00.000Z',
    ...extra,
  });

describe('JsonlEventStore: a complete last line without its newline (D1)', () => {
  it('replays it, and the next append writes the missing newline instead of cutting the line off', async () => {
    const path = join(dir, 'events.jsonl');
    await writeFile(path, `${eventLine('A', 1)}\n${eventLine('B', 2)}`); // a crash before the newline
    const store = new JsonlEventStore(path);
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B']);
    const appended = await store.append({ type: 'C' });
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B', 'C']);
    expect(await readFile(path, 'utf8')).toBe(
      `${eventLine('A', 1)}\n${eventLine('B', 2)}\n${JSON.stringify(appended)}\n`,
    );
    await store.close();
  });

  it('keeps a lone first line (a batch journal header) that lost its newline, across appends and reopenings', async () => {
    const path = join(dir, 'journal.jsonl');
    await writeFile(path, eventLine('BatchJournalOpened', 1, { transactionId: 'batch-1' }));
    for (const type of ['BatchLineFinished', 'BatchLineFinished']) {
      const store = new JsonlEventStore(path, { fsync: true });
      const [header] = await replay(store);
      expect(header).toMatchObject({ type: 'BatchJournalOpened', transactionId: 'batch-1' });
      await store.append({ type, transactionId: 'batch-1' });
      await store.close();
    }
    expect((await replay(new JsonlEventStore(path))).map((event) => event.type)).toEqual([
      'BatchJournalOpened',
      'BatchLineFinished',
      'BatchLineFinished',
    ]);
  });

  it('keeps a line a hand repair left without its newline, after a byte order mark and in CRLF', async () => {
    const path = join(dir, 'edited.jsonl');
    await writeFile(path, `\uFEFF${eventLine('A', 1)}\r\n${eventLine('B', 2)}\r`);
    const store = new JsonlEventStore(path);
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B']);
    await store.append({ type: 'C' });
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B', 'C']);
    await store.close();
  });

  it('still cuts a last line that does not parse (a write cut short) before appending, in any instance', async () => {
    const path = join(dir, 'events.jsonl');
    const full = eventLine('Torn', 2);
    await writeFile(path, `${eventLine('A', 1)}\n${full.slice(0, -1)}`); // all but the closing brace
    const store = new JsonlEventStore(path);
    expect((await replay(store)).map((event) => event.type)).toEqual(['A']);
    await store.append({ type: 'B' });
    expect((await readFile(path, 'utf8')).includes('Torn')).toBe(false);
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B']);
    await store.close();
  });
});

describe('JsonlEventStore: bad lines (E2)', () => {
  it.each([
    ['null', 'not an event: the line must be a JSON object with id, type and at'],
    ['42', 'not an event: the line must be a JSON object'],
    ['[]', 'not an event: the line must be a JSON object'],
    ['"str"', 'not an event: the line must be a JSON object'],
    ['{"type":"A","at":"x"}', 'not an event: id must be a string'],
    ['{"id":"1","type":"","at":"x"}', 'not an event: type must not be empty'],
    ['{"id":"1","type":"A","at":"x","tool":7}', 'not an event: tool must be a string'],
    ['{"id":"1","type":"A","at":"x","data":[1]}', 'not an event: data must be a JSON object'],
    ['not json', 'not JSON'],
  ])(
    'names the file, the line and what is wrong with %s, in a TxError, filtered or not',
    async (line, problem) => {
      const path = join(dir, 'bad.jsonl');
      await writeFile(path, `${eventLine('A', 1)}\n${line}\n${eventLine('B', 2)}\n`);
      const store = new JsonlEventStore(path);
      for (const filter of [undefined, { type: 'A' }, { transactionId: 't', tool: 'x' }]) {
        const error = await replay(store, filter).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(TxError);
        expect(error).toMatchObject({ code: TxErrorCode.StoreUnavailable, retryable: false });
        expect((error as TxError).message).toContain(`${path}:2: ${problem}`);
      }
    },
  );

  it('keeps the fields it does not know (a newer writer’s)', async () => {
    const path = join(dir, 'newer.jsonl');
    await writeFile(path, `${eventLine('A', 1, { schemaVersion: 2, data: { n: 1 } })}\n`);
    expect(await replay(new JsonlEventStore(path))).toEqual([
      expect.objectContaining({ type: 'A', schemaVersion: 2, data: { n: 1 } }),
    ]);
  });

  it('refuses appends, from every store of the file in the process, once a read failed; verify() after the repair resumes them', async () => {
    const path = join(dir, 'damaged.jsonl');
    const damaged = `${eventLine('A', 1)}\n{"oops"\n${eventLine('B', 2)}\n`;
    await writeFile(path, damaged);
    const store = new JsonlEventStore(path);
    await store.append({ type: 'BeforeTheRead' }); // nothing knew yet: a new process does not either
    await expect(replay(store)).rejects.toThrow(`${path}:2: not JSON`);
    const refusal = {
      code: TxErrorCode.StoreUnavailable,
      retryable: false,
      message: expect.stringMatching(
        /damaged\.jsonl:2: not JSON; append refused.*fix or remove that line.*verify\(\)/,
      ),
    };
    await expect(store.append({ type: 'Refused' })).rejects.toMatchObject(refusal);
    await expect(new JsonlEventStore(path).append({ type: 'Refused' })).rejects.toMatchObject(refusal);
    await expect(store.verify()).rejects.toThrow(`${path}:2: not JSON`);
    await expect(store.append({ type: 'StillRefused' })).rejects.toMatchObject(refusal);
    expect((await readFile(path, 'utf8')).includes('Refused')).toBe(false);

    // repaired in an editor that writes a new file in the old one's place
    const repaired = join(dir, 'repaired.tmp');
    await writeFile(repaired, (await readFile(path, 'utf8')).replace('{"oops"\n', ''));
    await rename(repaired, path);
    expect(await store.verify()).toBe(3);
    await store.append({ type: 'Resumed' });
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B', 'BeforeTheRead', 'Resumed']);
    await store.close();
  });

  it('refuses an append when the last line is JSON but not an event, naming it, and changes nothing', async () => {
    const path = join(dir, 'bad-tail.jsonl');
    const content = `${eventLine('A', 1)}\n{"note":"edited by hand"}`;
    await writeFile(path, content);
    const store = new JsonlEventStore(path);
    await expect(store.append({ type: 'B' })).rejects.toMatchObject({
      code: TxErrorCode.StoreUnavailable,
      message: expect.stringContaining(`${path}:2: not an event: id must be a string`),
    });
    await expect(replay(store)).rejects.toThrow(`${path}:2: not an event`);
    expect(await readFile(path, 'utf8')).toBe(content);
    await writeFile(path, `${eventLine('A', 1)}\n`);
    await store.verify();
    await store.append({ type: 'B' });
    expect((await replay(store)).map((event) => event.type)).toEqual(['A', 'B']);
    await store.close();
  });
});
