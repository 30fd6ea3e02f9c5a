/**
 * Memory per stored key at 1 M keys in `memoryIdempotencyStore`, the time to insert them (a
 * `begin` then a `complete`, as `dedupe` and `txTool` do) and the cost of a lookup (a `begin` that
 * finds the completed key) in the full store. Two record shapes, from a real call: what a server
 * (`txTool`) keeps, the result alone, and what the client (`dedupe`) keeps, the result with its
 * `data` and `meta`. Each key's record is its own objects and strings, as in real use.
 * The store's default bound (512 MiB estimated, `DEFAULT_MEMORY_STORE_MAX_BYTES`) holds fewer than
 * 1 M such keys: this one is unbounded in bytes and sized for the 1 M keys.
 * Memory is V8 heap plus array buffers (lru-cache keeps its index in typed arrays), after a full GC.
 *
 * @nodeFlags --expose-gc
 * Run: `npm run bench -- memory`. BENCH_MEMORY_KEYS sizes it.
 */

import {
  createMcpTx,
  fingerprint,
  type IdempotencyRecord,
  type IdempotencyStore,
  memoryIdempotencyStore,
} from 'mcp-tx';
import { firstValueFrom } from 'rxjs';
import { connectInMemory } from './contenders.js';
import { machineLine, writeResults } from './harness.js';

const KEYS = Number(process.env.BENCH_MEMORY_KEYS ?? 1_000_000);
const LOOKUPS = 200_000;
const BATCH = 10_000;
const TTL_MS = 300_000;
const PLACEHOLDER = 'KEY-PLACEHOLDER';

if (globalThis.gc === undefined)
  throw new Error('memory.bench.ts needs node --expose-gc (npm run bench passes it)');
const collect = globalThis.gc;

/** Heap plus array buffers after a full collection, in bytes. */
function retainedBytes(): number {
  collect();
  collect();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** The record the default pipeline stores for `echo({ n: 424242 })` with the idempotency key {@link PLACEHOLDER}. */
async function recordedCall(): Promise<IdempotencyRecord> {
  const store = memoryIdempotencyStore();
  let recorded: IdempotencyRecord | undefined;
  const recording: IdempotencyStore = {
    ...store,
    complete: async (key, print, record, ttlMs) => {
      recorded = record;
      await store.complete(key, print, record, ttlMs);
    },
  };
  const client = await connectInMemory();
  const tx = createMcpTx(client, { dedupe: { store: recording } });
  await firstValueFrom(tx.call$('echo', { n: 424_242 }, { idempotencyKey: PLACEHOLDER }));
  await client.close();
  if (recorded === undefined) throw new Error('the call stored no record');
  return recorded;
}

/** Makes each key's own record from the template: fresh objects and strings, with its argument, key and request id. */
function recordMaker(template: IdempotencyRecord): (index: number) => IdempotencyRecord {
  const requestId = template.kind === 'result' ? template.meta?.requestId : undefined;
  let json = JSON.stringify(template).replaceAll('424242', '@N@');
  if (requestId !== undefined) json = json.replaceAll(requestId, '@REQUEST-ID@');
  return (index) =>
    JSON.parse(
      json
        .replaceAll(PLACEHOLDER, `order-${index}`)
        .replaceAll('@N@', String(index))
        .replaceAll('@REQUEST-ID@', `019ab3c2-5e1f-7a3b-9c4d-${index.toString(16).padStart(12, '0')}`),
    );
}

const keyOf = (index: number) => `echo:order-${index}`;
const printOf = (index: number) => fingerprint({ n: index });

interface Measured {
  readonly emptyBytes: number;
  readonly bytesPerKey: number;
  readonly insertMicros: number;
  readonly lookupMicros: number;
}

/** Fills a fresh store with `KEYS` records, then looks `LOOKUPS` random keys up. */
async function measure(makeRecord: (index: number) => IdempotencyRecord): Promise<Measured> {
  const before = retainedBytes();
  const store = memoryIdempotencyStore({
    maxEntries: KEYS,
    maxBytes: Number.MAX_SAFE_INTEGER,
    windowMs: TTL_MS,
  });
  const emptyBytes = retainedBytes() - before;
  let insertNanos = 0n;
  for (let first = 0; first < KEYS; first += BATCH) {
    const indexes = Array.from({ length: Math.min(BATCH, KEYS - first) }, (_, offset) => first + offset);
    const batch = indexes.map((index) => ({
      key: keyOf(index),
      print: printOf(index),
      record: makeRecord(index),
    }));
    const started = process.hrtime.bigint();
    for (const { key, print, record } of batch) {
      await store.begin(key, print, TTL_MS);
      await store.complete(key, print, record, TTL_MS);
    }
    insertNanos += process.hrtime.bigint() - started;
  }
  const bytesPerKey = (retainedBytes() - before) / KEYS;
  if (store.size !== KEYS) throw new Error(`the store kept ${store.size} of ${KEYS} keys`);

  const lookups = Array.from({ length: LOOKUPS }, () => Math.floor(Math.random() * KEYS)).map((index) => ({
    key: keyOf(index),
    print: printOf(index),
  }));
  const started = process.hrtime.bigint();
  for (const { key, print } of lookups) {
    if ((await store.begin(key, print, TTL_MS)).status !== 'completed')
      throw new Error(`${key} was not found`);
  }
  const lookupMicros = Number(process.hrtime.bigint() - started) / 1_000 / LOOKUPS;
  return { emptyBytes, bytesPerKey, insertMicros: Number(insertNanos) / 1_000 / KEYS, lookupMicros };
}

const clientRecord = await recordedCall();
if (clientRecord.kind !== 'result') throw new Error('the call failed');
const shapes = [
  {
    name: 'server (`txTool`): result',
    template: { kind: 'result', result: { content: clientRecord.result.content } } as const,
  },
  { name: 'client (`dedupe`): result + data + meta', template: clientRecord },
];
const rows: string[] = [];
for (const { name, template } of shapes) {
  const { emptyBytes, bytesPerKey, insertMicros, lookupMicros } = await measure(recordMaker(template));
  rows.push(
    `| ${name} | ${JSON.stringify(template).length} | ${Math.round(bytesPerKey)} | ${((bytesPerKey * KEYS) / 2 ** 20).toFixed(0)} | ${(emptyBytes / 2 ** 20).toFixed(1)} | ${insertMicros.toFixed(2)} | ${lookupMicros.toFixed(2)} |`,
  );
}
writeResults(
  'memory',
  [
    `memoryIdempotencyStore with maxEntries ${KEYS} and no byte bound (the default bound, 512 MiB estimated, holds fewer), ${KEYS} completed keys like \`echo:order-123\` with a sha256 fingerprint each; insert = \`begin\` + \`complete\`, lookup = \`begin\` of a random stored key (${LOOKUPS}); heap + array buffers after a full GC; ${machineLine()}.`,
    '',
    '| record kept | record JSON bytes | bytes/key | MiB at full | MiB empty store | insert µs/key | lookup µs |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n'),
);
