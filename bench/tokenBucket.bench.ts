/**
 * Token-bucket accuracy in real time: a `tokenBucket` at RATE/s, burst BURST, with a backlog that
 * never empties for about DURATION_S seconds. From the start times: the most calls started in any
 * window of W seconds against the bound `burst + rate·W`, the achieved rate against the configured
 * one, and each start's lateness against the ideal schedule (the burst when the bucket is made, then
 * one every 1/rate s). Once on the bare bucket (every `acquire()` queued at once), once through
 * `throttle` on real `attempt$` calls over InMemoryTransport (64 subscribed at a time), timed both
 * when the bucket admits a call and when the call reaches the server's handler.
 * Run: `npm run bench -- tokenBucket`. BENCH_RATE / BENCH_BURST / BENCH_SECONDS size it.
 */

import { createMcpTx, type Limiter, tokenBucket } from 'mcp-tx';
import { throttle } from 'mcp-tx/operators';
import { lastValueFrom, mergeMap, range, tap } from 'rxjs';
import { connectInMemory, echoServer } from './contenders.js';
import { machineLine, percentile, writeResults } from './harness.js';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const BURST = Number(process.env.BENCH_BURST ?? 10);
const DURATION_S = Number(process.env.BENCH_SECONDS ?? 3);
const CALLS = Math.round(BURST + RATE * DURATION_S);
const WINDOWS_S = [0.01, 0.1, 0.5, 1, 2];
const IN_FLIGHT = 64;

/** When the bucket was made, full, and when each call started (ms, `performance.now()`). */
interface Run {
  readonly origin: number;
  readonly starts: readonly number[];
}

/** `CALLS` calls all queued on a bare bucket at once. */
async function bareBucketRun(): Promise<Run> {
  const bucket = tokenBucket({ ratePerSecond: RATE, burst: BURST });
  const origin = performance.now();
  const starts: number[] = [];
  await new Promise<void>((done) => {
    for (let index = 0; index < CALLS; index++) {
      bucket.acquire().subscribe(() => {
        starts.push(performance.now());
        if (starts.length === CALLS) done();
      });
    }
  });
  return { origin, starts };
}

/**
 * `CALLS` throttled `attempt$` calls on a warm connection, `IN_FLIGHT` subscribed at a time (so the
 * bucket's queue never empties): when the bucket admitted each, and when each reached the server's handler.
 */
async function throttledCallRuns(): Promise<{ admitted: Run; arrived: Run }> {
  const arrived: number[] = [];
  const client = await connectInMemory(echoServer(() => arrived.push(performance.now())));
  const tx = createMcpTx(client);
  const throttled = (limiter: Limiter) =>
    range(0, CALLS).pipe(mergeMap((n) => tx.attempt$('echo', { n }).pipe(throttle(limiter)), IN_FLIGHT));
  await lastValueFrom(throttled(tokenBucket({ ratePerSecond: 1e6, burst: CALLS }))); // warm the path up
  arrived.length = 0;
  const admitted: number[] = [];
  const bucket = tokenBucket({ ratePerSecond: RATE, burst: BURST });
  const origin = performance.now();
  await lastValueFrom(
    throttled({ acquire: () => bucket.acquire().pipe(tap(() => admitted.push(performance.now()))) }),
  );
  await client.close();
  return { admitted: { origin, starts: admitted }, arrived: { origin, starts: arrived } };
}

/** How late `setTimeout(waitMs)` fires, ms, over `samples` timers one after another: the event loop's own jitter. */
async function timerLateness(waitMs: number, samples: number): Promise<number[]> {
  const lateness: number[] = [];
  for (let index = 0; index < samples; index++) {
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    lateness.push(performance.now() - started - waitMs);
  }
  return lateness;
}

/** The most starts within any closed window of `windowMs` (starts sorted). */
function mostStartsWithin(starts: readonly number[], windowMs: number): number {
  let most = 0;
  let first = 0;
  for (let last = 0; last < starts.length; last++) {
    while ((starts[last] as number) - (starts[first] as number) > windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

interface Accuracy {
  readonly achievedRate: number;
  /** Lateness of each start against the ideal schedule, ms. */
  readonly lateness: readonly number[];
  /** Per window length: the most starts seen, and the bound. */
  readonly windows: ReadonlyArray<{
    readonly seconds: number;
    readonly most: number;
    readonly bound: number;
  }>;
}

function accuracy({ origin, starts }: Run): Accuracy {
  const sorted = [...starts].sort((a, b) => a - b);
  const spanS = ((sorted.at(-1) as number) - origin) / 1_000;
  const ideal = (index: number) => origin + (Math.max(0, index - BURST + 1) * 1_000) / RATE;
  return {
    achievedRate: (sorted.length - BURST) / spanS,
    lateness: sorted.map((start, index) => start - ideal(index)),
    windows: WINDOWS_S.map((seconds) => ({
      seconds,
      most: mostStartsWithin(sorted, seconds * 1_000),
      bound: Math.floor(BURST + RATE * seconds),
    })),
  };
}

const timers = await timerLateness(1_000 / RATE, 100);
const bare = await bareBucketRun();
const { admitted, arrived } = await throttledCallRuns();
const variants = [
  { name: 'bucket.acquire(), all queued', accuracy: accuracy(bare) },
  { name: 'throttle: admitted', accuracy: accuracy(admitted) },
  { name: 'throttle: reached the server', accuracy: accuracy(arrived) },
];

/** p50 / p99 / max, ms. */
const spread = (values: readonly number[]) =>
  [50, 99, 100].map((p) => percentile(values, p).toFixed(2)).join(' / ');

const rateRows = variants.map(({ name, accuracy: { achievedRate, lateness, windows } }) => {
  const error = Number((((achievedRate - RATE) / RATE) * 100).toFixed(2)) || 0; // no "-0.00
  const overBound = windows.filter(({ most, bound }) => most > bound).length;
  const within = overBound === 0 ? 'yes' : `no (${overBound} of ${windows.length} window sizes)`;
  return `| ${name} | ${achievedRate.toFixed(1)} | ${error > 0 ? '+' : ''}${error.toFixed(2)}% | ${spread(lateness)} | ${within} |`;
});
const windowRows = WINDOWS_S.map((seconds, index) => {
  const cells = variants.map(({ accuracy: { windows } }) => windows[index]?.most);
  return `| ${seconds * 1_000} ms | ${Math.floor(BURST + RATE * seconds)} | ${cells.join(' | ')} |`;
});
writeResults(
  'tokenBucket',
  [
    `tokenBucket({ ratePerSecond: ${RATE}, burst: ${BURST} }) in real time, ${CALLS} calls, about ${DURATION_S} s of backlog: all queued at once on the bare bucket; ${IN_FLIGHT} \`attempt$\` calls subscribed at a time through \`throttle\` (InMemoryTransport), timed when admitted and when they reach the server. Lateness = start − ideal start (the burst when the bucket is made, then one every ${1_000 / RATE} ms; the bucket reads \`Date.now()\`, whole ms, so a start can be up to 1 ms early). The event loop's own timer lateness at the time, \`setTimeout(${1_000 / RATE})\` p50 / p99 / max: ${spread(timers)} ms; ${machineLine()}.`,
    '',
    '| driven by | achieved calls/s | error vs configured | lateness ms p50 / p99 / max | every window within burst + rate·W |',
    '|---|---:|---:|---:|---|',
    ...rateRows,
    '',
    'Most calls started within any window of W:',
    '',
    `| W | bound burst + rate·W | ${variants.map(({ name }) => name).join(' | ')} |`,
    `|---:|---:|${variants.map(() => '---:|').join('')}`,
    ...windowRows,
  ].join('\n'),
);
