/**
 * What a dedupe hit costs: a keyed call whose result is already stored is answered from the store
 * (`duplicate: true`, the source not subscribed, nothing sent). Against a bare `client.callTool`
 * and against a miss (a new key: the call runs and its result is stored), through `tx.call$` and
 * through the `dedupe` operator on `attempt$` with a memoryIdempotencyStore; InMemoryTransport.
 * Run: `npm run bench -- dedupe`. BENCH_DEDUPE_CALLS / BENCH_DEDUPE_ROUNDS size it.
 */

import { createMcpTx, fingerprint, memoryIdempotencyStore, type TxResult } from 'mcp-tx';
import { dedupe } from 'mcp-tx/operators';
import { firstValueFrom, type Observable } from 'rxjs';
import { BARE, connectInMemory, echoServer, INTERLEAVING } from './contenders.js';
import { type Contender, machineLine, measureContenders, writeResults } from './harness.js';

const CALLS = Number(process.env.BENCH_DEDUPE_CALLS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_DEDUPE_ROUNDS ?? 5);
const IN_FLIGHT = 64;
/** Hits cycle over this many stored keys, so that calls in flight together never share a key. */
const STORED_KEYS = 1_000;

/** Room for every key the run makes, so that no stored hit key is evicted. */
const MAX_ENTRIES = 100_000;

let served = 0;
const client = await connectInMemory(echoServer(() => served++));
const tx = createMcpTx(client, { dedupe: { maxEntries: MAX_ENTRIES } });
const store = memoryIdempotencyStore({ maxEntries: MAX_ENTRIES });
const args = { n: 1 };

/** A keyed call. */
type Keyed = (key: string) => Observable<TxResult>;
const hitKey = (index: number) => `hit-${index % STORED_KEYS}`;

/** The ways of making a keyed call: the default pipeline, or the operator on a bare attempt. */
const paths: ReadonlyArray<{ readonly name: string; readonly keyed: Keyed }> = [
  { name: 'tx.call$ with a key', keyed: (key) => tx.call$('echo', args, { idempotencyKey: key }) },
  {
    name: 'attempt$ + dedupe(memory store)',
    keyed: (key) => tx.attempt$('echo', args, { idempotencyKey: key }).pipe(dedupe(store)),
  },
];

/** A hit and a miss contender for a path; its `STORED_KEYS` hit keys are stored first. */
async function hitAndMiss(path: string, keyed: Keyed): Promise<Contender[]> {
  for (let index = 0; index < STORED_KEYS; index++) await firstValueFrom(keyed(hitKey(index)));
  await expectHits(keyed);
  let hits = 0;
  let misses = 0;
  return [
    { name: `${path}: hit`, call: () => firstValueFrom(keyed(hitKey(hits++))) },
    { name: `${path}: miss`, call: () => firstValueFrom(keyed(`miss-${misses++}`)) },
  ];
}

/** Checks that every stored key is still a hit: a duplicate, and nothing reaches the server. */
async function expectHits(keyed: Keyed) {
  const servedBefore = served;
  const results: TxResult[] = [];
  for (let index = 0; index < STORED_KEYS; index++) results.push(await firstValueFrom(keyed(hitKey(index))));
  if (served !== servedBefore || results.some(({ meta }) => !meta.duplicate || meta.attempts !== 0)) {
    throw new Error('A dedupe hit reached the server or was not marked duplicate');
  }
}

const print = fingerprint(args);
let lookups = 0;
const contenders: Contender[] = [
  { name: BARE, call: () => client.callTool({ name: 'echo', arguments: args }) },
];
for (const { name, keyed } of paths) contenders.push(...(await hitAndMiss(name, keyed)));
contenders.push({
  name: 'memory store begin() alone: hit',
  call: () => store.begin(`echo:hit-${lookups++ % STORED_KEYS}`, print, 30_000),
});
const { sequential, parallel } = await measureContenders(contenders, {
  calls: CALLS,
  rounds: ROUNDS,
  inFlight: IN_FLIGHT,
  warmUpCalls: 500,
});
for (const { keyed } of paths) await expectHits(keyed);
await client.close();

const bare = sequential.get(BARE) as number;
const row = (label: string, hit: string, miss?: string) => {
  const hitMicros = sequential.get(hit) as number;
  const missMicros = miss === undefined ? undefined : (sequential.get(miss) as number);
  return `| ${label} | ${hitMicros.toFixed(1)} | ${missMicros?.toFixed(1) ?? '–'} | ${
    missMicros === undefined ? '–' : `${(hitMicros / missMicros).toFixed(2)}×`
  } | ${(hitMicros / bare).toFixed(2)}× | ${Math.round(parallel.get(hit) as number)} |`;
};
writeResults(
  'dedupe',
  [
    `Keyed calls answered from the store (hit: \`duplicate: true\`, nothing sent) or run and stored (miss: a new key), InMemoryTransport; hits cycle over ${STORED_KEYS} stored keys; ${CALLS} sequential calls and ${CALLS * 2} with ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds (${INTERLEAVING}). Bare \`client.callTool\`: ${bare.toFixed(1)} µs/call, ${Math.round(parallel.get(BARE) as number)} calls/s; ${machineLine()}.`,
    '',
    `| path | hit µs/call | miss µs/call | hit vs miss | hit vs bare callTool | hits/s, ${IN_FLIGHT} in flight |`,
    '|---|---:|---:|---:|---:|---:|',
    ...paths.map(({ name }) => row(name, `${name}: hit`, `${name}: miss`)),
    row('memory store `begin()` alone', 'memory store begin() alone: hit'),
  ].join('\n'),
);
