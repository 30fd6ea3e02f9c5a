import { writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type } from 'node:os';

/** One way of making a call, measured against the others on the same server and transport. */
export interface Contender {
  readonly name: string;
  readonly call: () => Promise<unknown>;
}

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Nanoseconds taken by `calls` calls, one at a time. */
export async function sequentialNanos(call: () => Promise<unknown>, calls: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let index = 0; index < calls; index++) await call();
  return Number(process.hrtime.bigint() - started);
}

/** Nanoseconds taken by `calls` calls with `inFlight` calls always outstanding. */
export async function parallelNanos(
  call: () => Promise<unknown>,
  calls: number,
  inFlight: number,
): Promise<number> {
  let started = 0;
  const worker = async () => {
    while (started < calls) {
      started += 1;
      await call();
    }
  };
  const begin = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return Number(process.hrtime.bigint() - begin);
}

/**
 * Each contender's time (ns) per round. A round is `batches` short batches of each contender, taken
 * in rotating order (contender A, B, C, then B, C, A, …), so that the machine's slow and fast spells
 * (another tenant on the host, a collection) fall on every contender alike; `batch` runs one batch
 * and returns its nanoseconds.
 */
export async function interleavedRounds(
  contenders: readonly Contender[],
  { rounds, batches }: { readonly rounds: number; readonly batches: number },
  batch: (contender: Contender) => Promise<number>,
): Promise<Map<string, number[]>> {
  const samples = new Map(contenders.map((contender) => [contender.name, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    const nanos = new Map(contenders.map((contender) => [contender.name, 0]));
    for (let index = 0; index < batches; index++) {
      for (let offset = 0; offset < contenders.length; offset++) {
        const contender = contenders[(index + offset) % contenders.length] as Contender;
        nanos.set(contender.name, (nanos.get(contender.name) as number) + (await batch(contender)));
      }
    }
    for (const [name, total] of nanos) samples.get(name)?.push(total);
  }
  return samples;
}

/**
 * The median over the rounds of `samples[name] / samples[baseline]` in the same round: a ratio that
 * a slow round (another process on the cores) moves for both contenders alike.
 *
 * @example
 * medianRatio(comparison.rounds.sequential, 'mcp-tx call$ (default pipeline)', BARE); // 1.3
 */
export function medianRatio(
  samples: ReadonlyMap<string, readonly number[]>,
  name: string,
  baseline: string,
): number {
  const base = samples.get(baseline) ?? [];
  return median((samples.get(name) ?? []).map((value, round) => value / (base[round] as number)));
}

/** A line naming the machine, for the results file. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

/** Sequential µs/call and calls/s with calls in flight, each contender's median over the rounds. */
export interface Comparison {
  readonly sequential: Map<string, number>;
  readonly parallel: Map<string, number>;
  /** Every round's sample, for ratios taken round by round ({@link medianRatio}). */
  readonly rounds: { readonly sequential: Map<string, number[]>; readonly parallel: Map<string, number[]> };
}

/** How much {@link measureContenders} runs. */
export interface ComparisonSize {
  /** Sequential calls per contender per round. */
  readonly calls: number;
  /** Calls per contender per round with `inFlight` outstanding (default: twice `calls`). */
  readonly parallelCalls?: number;
  readonly rounds: number;
  readonly inFlight: number;
  /** Sequential calls each contender makes first, unmeasured. */
  readonly warmUpCalls: number;
  /** Sequential calls per interleaved batch (default 100; a parallel batch is 10 per call in flight). */
  readonly batchCalls?: number;
}

/**
 * Warms every contender up, then measures sequential µs/call and calls/s with `inFlight` calls
 * outstanding: `rounds` rounds each, every round made of short batches of each contender in turn
 * (see {@link interleavedRounds}); a round's figure is its total over the batches.
 *
 * @example
 * const { sequential, parallel } = await measureContenders(contenders, { calls: 4_000, rounds: 7, inFlight: 64, warmUpCalls: 500 });
 */
export async function measureContenders(
  contenders: readonly Contender[],
  size: ComparisonSize,
): Promise<Comparison> {
  for (const contender of contenders) await sequentialNanos(contender.call, size.warmUpCalls);
  const batchCalls = size.batchCalls ?? 100;
  const sequentialBatches = Math.max(1, Math.round(size.calls / batchCalls));
  const sequentialRounds = await interleavedRounds(
    contenders,
    { rounds: size.rounds, batches: sequentialBatches },
    (contender) => sequentialNanos(contender.call, batchCalls),
  );
  const parallelBatchCalls = size.inFlight * 10;
  const parallelBatches = Math.max(
    1,
    Math.round((size.parallelCalls ?? size.calls * 2) / parallelBatchCalls),
  );
  const parallelRounds = await interleavedRounds(
    contenders,
    { rounds: size.rounds, batches: parallelBatches },
    (contender) => parallelNanos(contender.call, parallelBatchCalls, size.inFlight),
  );
  const perRound = (samples: Map<string, number[]>, toFigure: (nanos: number) => number) =>
    new Map([...samples].map(([name, values]) => [name, values.map(toFigure)]));
  const sequential = perRound(sequentialRounds, (nanos) => nanos / 1_000 / (sequentialBatches * batchCalls));
  const parallel = perRound(parallelRounds, (nanos) => (parallelBatches * parallelBatchCalls * 1e9) / nanos);
  const medians = (samples: Map<string, number[]>) =>
    new Map([...samples].map(([name, values]) => [name, median(values)]));
  return {
    sequential: medians(sequential),
    parallel: medians(parallel),
    rounds: { sequential, parallel },
  };
}

/**
 * A markdown table of a {@link Comparison}: each contender's µs/call and calls/s (medians), and both
 * as a ratio to the `baseline` contender's (the median of the per-round ratios).
 *
 * @example
 * console.log(comparisonTable(names, await measureContenders(contenders, size), 'bare client.callTool', 64));
 */
export function comparisonTable(
  names: readonly string[],
  { sequential, parallel, rounds }: Comparison,
  baseline: string,
  inFlight: number,
): string {
  const rows = names.map((name) => {
    const micros = sequential.get(name) as number;
    const perSecond = parallel.get(name) as number;
    const sequentialRatio = medianRatio(rounds.sequential, name, baseline);
    const parallelRatio = medianRatio(rounds.parallel, name, baseline);
    return `| ${name} | ${micros.toFixed(1)} | ${sequentialRatio.toFixed(2)}× | ${Math.round(perSecond)} | ${parallelRatio.toFixed(2)}× |`;
  });
  return [
    `| call | sequential µs/call | vs bare | calls/s, ${inFlight} in flight | vs bare |`,
    '|---|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

/** The `p`-th percentile (0–100, nearest rank) of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Prints a benchmark's results and writes them to bench/results/<name>.md, where `npm run bench` joins them. */
export function writeResults(name: string, markdown: string): void {
  console.log(markdown);
  writeFileSync(new URL(`./results/${name}.md`, import.meta.url), `${markdown}\n`);
}

/** The machine in full, for the header of bench/results.md: CPU model and cores, RAM, OS, Node. */
export function machineDescription(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const ramGiB = (totalmem() / 2 ** 30).toFixed(1);
  return `${cpu}, ${cpus().length} cores, ${ramGiB} GiB RAM, ${type()} ${release()} (${process.arch}), Node ${process.version}`;
}
