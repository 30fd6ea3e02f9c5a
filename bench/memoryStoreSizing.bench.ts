/**
 * The memory a key costs `memoryIdempotencyStore`, measured, against what the store estimates
 * (its `maxBytes` bound counts estimates): the figures behind `DEFAULT_MEMORY_STORE_MAX_BYTES` and
 * `ENTRY_OVERHEAD_BYTES`. Four record shapes, each key its own objects and strings, as in real use;
 * a `begin` then a `complete` per key, as `dedupe` and `txTool` do. Heap plus array buffers after a
 * full GC. Prints a table (estimated ≥ measured is the goal: the bound must not under-count).
 *
 * @nodeFlags --expose-gc
 * Run: `npm run bench -- memoryStoreSizing`. BENCH_SIZING_KEYS sizes it (default 200 000).
 */
import { fingerprint, type IdempotencyRecord, memoryIdempotencyStore } from 'mcp-tx';
import { machineLine } from './harness.js';

const KEYS = Number(process.env.BENCH_SIZING_KEYS ?? 200_000);
const TTL_MS = 300_000;

if (globalThis.gc === undefined) throw new Error('memoryStoreSizing.bench.ts needs node --expose-gc');
const collect = globalThis.gc;
const retainedBytes = () => {
  collect();
  collect();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
};

const requestId = (n: number) => `019ab3c2-5e1f-7a3b-9c4d-${n.toString(16).padStart(12, '0')}`;
const text = (n: number) => ({ content: [{ type: 'text' as const, text: JSON.stringify({ n }) }] });
const meta = (n: number) => ({
  requestId: requestId(n),
  attempts: 1,
  ack: true,
  processed: true,
  duplicate: false,
  status: 'completed',
  startedAt: new Date(1_760_000_000_000 + n).toISOString(),
  durationMs: 3,
  serverSupportsTx: true,
});
const shapes: ReadonlyArray<readonly [string, (n: number) => IdempotencyRecord]> = [
  ['server (`txTool`): small text result', (n) => ({ kind: 'result', result: text(n) })],
  [
    'client (`dedupe`): small result + data + meta',
    (n) => ({ kind: 'result', result: text(n), data: { n }, meta: meta(n) as never }),
  ],
  [
    'client: 4 KB text result + meta',
    (n) => ({
      kind: 'result',
      result: { content: [{ type: 'text', text: `${n}`.padEnd(4_096, 'x') }] },
      meta: meta(n) as never,
    }),
  ],
  [
    'client: structured, 50 small objects + meta',
    (n) => {
      const items = Array.from({ length: 50 }, (_, i) => ({ id: n * 50 + i, ok: i % 2 === 0, score: i }));
      return {
        kind: 'result',
        result: { content: [], structuredContent: { items } },
        data: { items },
        meta: meta(n) as never,
      };
    },
  ],
  [
    'client: 500 small numbers + meta',
    (n) => {
      const values = Array.from({ length: 500 }, (_, i) => (n + i) % 1_000);
      return {
        kind: 'result',
        result: { content: [], structuredContent: { values } },
        data: { values },
        meta: meta(n) as never,
      };
    },
  ],
  [
    'client: 1 000 non-Latin-1 characters + meta',
    (n) => ({
      kind: 'result',
      result: { content: [{ type: 'text', text: `${n}`.padEnd(1_000, 'é中') }] },
      meta: meta(n) as never,
    }),
  ],
];

/** Fills a fresh store with `KEYS` records of one shape: measured and estimated bytes per key. */
async function measure(make: (n: number) => IdempotencyRecord): Promise<readonly [number, number]> {
  const before = retainedBytes();
  const store = memoryIdempotencyStore({ maxBytes: Number.MAX_SAFE_INTEGER, windowMs: TTL_MS });
  for (let n = 0; n < KEYS; n++) {
    const key = `echo:order-${n}`;
    const print = fingerprint({ n });
    await store.begin(key, print, TTL_MS);
    await store.complete(key, print, make(n), TTL_MS);
  }
  const measured = (retainedBytes() - before) / KEYS;
  const { entries, bytes } = store.stats();
  if (entries !== KEYS) throw new Error(`the store kept ${entries} of ${KEYS} keys`);
  return [measured, bytes / KEYS];
}

await measure((n) => ({ kind: 'result', result: text(n) })); // warm-up: code and lazy structures, not counted
console.log(`memoryIdempotencyStore, ${KEYS} completed keys per shape; ${machineLine()}`);
console.log('| record kept | JSON bytes | measured bytes/key | estimated bytes/key | estimated / measured |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, make] of shapes) {
  const [measured, estimated] = await measure(make);
  console.log(
    `| ${name} | ${JSON.stringify(make(0)).length} | ${measured.toFixed(0)} | ${estimated.toFixed(0)} | ${(estimated / measured).toFixed(2)} |`,
  );
}
