/**
 * The process bench/instructions.bench.ts measures (not a benchmark of its own):
 *
 * - `callgrind <contender> <warm-up calls> <instrumented warm-up calls> <measured calls>`, run under `valgrind --tool=callgrind --instr-atstart=no`: warms the
 *   contender up uninstrumented, turns instrumentation on (`callgrind_control -i on`), warms up
 *   again, then dumps three zeroed segments: `empty` and `empty2` (nothing run:
 *   what the control commands themselves cost; one may hold a stray collection) and `measured` (the
 *   measured calls, one at a time).
 * - `bytes`: bytes allocated per call of every contender, from the heap growth over calls that fit
 *   in the young generation (run with `--expose-gc` and a large fixed semi-space, so that no
 *   scavenge runs while a sample is taken), median of samples; prints them as JSON.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { callContenders, connectInMemory } from './contenders.js';
import { type Contender, median } from './harness.js';

const BYTES_CALLS = { warmUp: 2_000, sample: 500, samples: 5 };

const run = promisify(execFile);
const control = (...args: string[]) => run('callgrind_control', [...args, String(process.pid)]);

async function callsOf(contender: Contender, calls: number): Promise<void> {
  for (let index = 0; index < calls; index++) await contender.call();
}

async function measureInstructions(contender: Contender, [warmUp, instrumented, measured]: number[]) {
  await callsOf(contender, warmUp ?? 0);
  await control('-i', 'on');
  await callsOf(contender, instrumented ?? 0);
  await control('-z');
  await control('-d', 'empty');
  await control('-d', 'empty2');
  await callsOf(contender, measured ?? 0);
  await control('-d', 'measured');
}

async function measureBytes(contenders: readonly Contender[]): Promise<Record<string, number>> {
  const collect = globalThis.gc;
  if (collect === undefined) throw new Error('bytes mode needs node --expose-gc');
  const bytes: Record<string, number> = {};
  for (const contender of contenders) {
    await callsOf(contender, BYTES_CALLS.warmUp);
    const samples: number[] = [];
    for (let sample = 0; sample < BYTES_CALLS.samples; sample++) {
      collect();
      const before = process.memoryUsage().heapUsed;
      await callsOf(contender, BYTES_CALLS.sample);
      samples.push((process.memoryUsage().heapUsed - before) / BYTES_CALLS.sample);
    }
    bytes[contender.name] = median(samples);
  }
  return bytes;
}

const [mode, name, ...counts] = process.argv.slice(2);
const client = await connectInMemory();
const contenders = callContenders(client);
if (mode === 'bytes') {
  console.log(JSON.stringify(await measureBytes(contenders)));
} else {
  const contender = contenders.find((candidate) => candidate.name === name);
  if (contender === undefined) throw new Error(`no contender named ${name}`);
  await measureInstructions(contender, counts.map(Number));
}
await client.close();
// The contenders' limiter, breaker and stores may keep timers: the measurement is done.
process.exit(0);
