import { cpus } from 'node:os';

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

/** Microseconds per call, one call at a time. */
export async function sequentialMicros(call: () => Promise<unknown>, calls: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let index = 0; index < calls; index++) await call();
  return Number(process.hrtime.bigint() - started) / 1_000 / calls;
}

/** Calls per second with `inFlight` calls always outstanding. */
export async function throughput(
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
  return calls / (Number(process.hrtime.bigint() - begin) / 1e9);
}

/**
 * Runs `measure` for every contender, `rounds` times in rotating order (so none always runs first or
 * on a warmer heap), and returns each contender's median.
 */
export async function compare(
  contenders: readonly Contender[],
  rounds: number,
  measure: (contender: Contender) => Promise<number>,
): Promise<Map<string, number>> {
  const samples = new Map(contenders.map((contender) => [contender.name, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    for (let offset = 0; offset < contenders.length; offset++) {
      const contender = contenders[(round + offset) % contenders.length] as Contender;
      samples.get(contender.name)?.push(await measure(contender));
    }
  }
  return new Map([...samples].map(([name, values]) => [name, median(values)]));
}

/** A line naming the machine, for the results file. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}
