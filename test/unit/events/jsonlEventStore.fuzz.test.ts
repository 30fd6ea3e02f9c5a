/**
 * Properties of JsonlEventStore over arbitrary log contents. In `npm test` they run a bounded
 * number of times from a fixed seed; `npm run fuzz` (FUZZ_FACTOR) runs them many times more from a
 * fresh seed; FUZZ_SEED=<seed> replays a failure (see test/unit/core/fuzz.ts).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import { TxEventSchema } from '../../../src/events/eventStore.js';
import { JsonlEventStore } from '../../../src/events/jsonlEventStore.js';
import { fuzz } from '../core/fuzz.js';

let dir: string;
let files = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-tx-jsonl-fuzz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const newPath = () => join(dir, `log-${++files}.jsonl`);

const text = fc.string({ unit: 'grapheme', maxLength: 12 });
/** A stored event as a JSONL line, without its newline. */
const eventLine = fc
  .record(
    {
      id: fc.uuid(),
      type: text.filter((type) => type !== ''),
      at: fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
      transactionId: text,
      tool: text,
      data: fc.dictionary(text, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    },
    { requiredKeys: ['id', 'type', 'at'] },
  )
  .map((event) => JSON.stringify(event));
/** Any line a log may hold: events, blanks, and lines that are not events (JSON or not). */
const anyLine = fc.oneof(
  { weight: 6, arbitrary: eventLine },
  { weight: 1, arbitrary: fc.constantFrom('', '  ', '\r') },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((line) => line.replaceAll('\n', ' ')) },
);
/** A prefix of `line` cut at a byte, as a write cut short leaves it (maybe inside a character). */
const tornPrefixOf = (line: string) =>
  fc.nat({ max: Buffer.byteLength(line) - 1 }).map((bytes) => Buffer.from(line).subarray(0, bytes));

/** What the store must make of a line (the spec, written independently of the store's code). */
function isEvent(line: string): boolean {
  try {
    return TxEventSchema.safeParse(JSON.parse(line.replace(/^\uFEFF/, ''))).success;
  } catch {
    return false;
  }
}
const parses = (line: string) => {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
};

const replay = (store: JsonlEventStore) => lastValueFrom(store.read$().pipe(toArray()));
const asLines = (events: readonly unknown[]) => events.map((event) => JSON.stringify(event));

describe('JsonlEventStore properties', () => {
  it('replays exactly the complete event lines, and appends never remove them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventLine, { maxLength: 8 }),
        eventLine.chain((line) =>
          fc.oneof(
            fc.constant({ tail: Buffer.alloc(0), kept: undefined as string | undefined }),
            fc.constant({ tail: Buffer.from(line), kept: line }), // complete, without its newline
            tornPrefixOf(line).map((tail) => ({ tail, kept: undefined })), // a write cut short
          ),
        ),
        fc.array(fc.record({ type: text.filter((type) => type !== '') }), { minLength: 1, maxLength: 3 }),
        async (lines, { tail, kept }, appends) => {
          const path = newPath();
          const body = lines.map((line) => `${line}\n`).join('');
          await writeFile(path, Buffer.concat([Buffer.from(body), tail]));
          const store = new JsonlEventStore(path);
          try {
            const complete = kept === undefined ? lines : [...lines, kept];
            expect(asLines(await replay(store))).toEqual(complete);
            const appended = [];
            for (const event of appends) appended.push(await store.append(event));
            const all = [...complete, ...asLines(appended)];
            expect(asLines(await replay(store))).toEqual(all);
            expect(await readFile(path, 'utf8')).toBe(all.map((line) => `${line}\n`).join(''));
          } finally {
            await store.close();
          }
        },
      ),
      fuzz(40),
    );
  });

  it('on any log, either replays its event lines and appends after them, or names its first bad line and appends nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyLine, { maxLength: 10 }), fc.boolean(), async (lines, newlineAtEnd) => {
        const path = newPath();
        const content = lines.join('\n') + (newlineAtEnd && lines.length > 0 ? '\n' : '');
        await writeFile(path, content);
        const terminated = (index: number) => index < lines.length - 1 || newlineAtEnd;
        const firstBad = lines.findIndex(
          (line, index) => line.trim() !== '' && !isEvent(line) && (terminated(index) || parses(line)),
        );
        const store = new JsonlEventStore(path);
        try {
          const read = await replay(store).then(
            (events) => ({ events }),
            (error: unknown) => ({ error }),
          );
          if (firstBad === -1) {
            if (!('events' in read)) throw read.error;
            const expected = lines.filter(
              (line, index) => isEvent(line) && (terminated(index) || parses(line)),
            );
            expect(asLines(read.events)).toEqual(expected.map((line) => line.replace(/^\uFEFF/, '')));
            const appended = await store.append({ type: 'Appended' });
            expect(asLines(await replay(store))).toEqual([...asLines(read.events), JSON.stringify(appended)]);
          } else {
            expect('error' in read && read.error).toBeInstanceOf(TxError);
            const error = (read as { error: TxError }).error;
            expect(error.code).toBe(TxErrorCode.StoreUnavailable);
            expect(error.message).toContain(`${path}:${firstBad + 1}: not `);
            await expect(store.append({ type: 'Refused' })).rejects.toMatchObject({
              code: TxErrorCode.StoreUnavailable,
            });
            expect(await readFile(path, 'utf8')).toBe(content);
          }
        } finally {
          await store.close();
        }
      }),
      fuzz(40),
    );
  });
});
