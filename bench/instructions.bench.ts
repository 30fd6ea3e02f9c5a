/**
 * Instructions per call, which the noise of a shared machine cannot move: each contender of
 * bench/contenders.ts (bare SDK, bare + `_meta`, the defer + retry floor, `attempt$`, each stage
 * alone, `call$`, keyed `call$`) in its own process under `valgrind --tool=callgrind` (node
 * `--single-threaded`, fixed semi-space), warmed up, counters zeroed around the measured calls
 * (bench/instructionsWorker.ts). The in-memory server runs in the same process, so its work is
 * counted too. Also bytes allocated per call (no valgrind needed). Without valgrind the
 * instruction columns are skipped with a note.
 *
 * Run: `npm run bench -- instructions`. BENCH_INSTR_CALLS sizes the measured calls;
 * BENCH_INSTR_ONLY=call$,bare counts only the contenders whose names contain one of those.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { BARE, callContenders, connectInMemory, FLOOR, KEYED_FLOOR } from './contenders.js';
import { machineLine, writeResults } from './harness.js';

const WARM_UP = 20_000;
const INSTRUMENTED_WARM_UP = 300;
const MEASURED = Number(process.env.BENCH_INSTR_CALLS ?? 3_000);
/**
 * Processes per contender; the lowest count is kept. About one process in four counts ~8–10 k more
 * per call whatever the code (lazy compilation, a full collection's write barriers, a threadpool
 * callback landing in the measured window; not allocation-site pretenuring: turning it off moves
 * every count but keeps the outliers), and bare calls move by a few k between runs too: the lowest
 * of three is the stable figure. Each process's count is printed as it ends.
 */
const RUNS = Number(process.env.BENCH_INSTR_RUNS ?? 3);
/** Comma-separated parts of contender names: only those are counted (for a quick look at one change). */
const ONLY = process.env.BENCH_INSTR_ONLY?.split(',');
/**
 * A small fixed young generation: a scavenge every few dozen calls, so that each measurement holds
 * many of them and their cost is spread evenly over the calls (with 16 MiB, one scavenge more or
 * less in a measurement moves it by a few per cent).
 */
const SEMI_SPACE_MB = 1;
/** Processes under valgrind at once (one per core of the 2-core machines this runs on). */
const PARALLEL = 2;
/** More Node flags for the measured processes (BENCH_INSTR_NODE_FLAGS, space-separated), for experiments. */
const EXTRA_NODE_FLAGS = process.env.BENCH_INSTR_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
const META = 'bare callTool + MCP-Tx _meta';
const ATTEMPT = 'mcp-tx attempt$ (no policies)';
const CALL = 'mcp-tx call$ (default pipeline)';
const KEYED = 'mcp-tx call$, new idempotency key';

const run = promisify(execFile);
const client = await connectInMemory();
/** cockatiel is compared in time only (bench/pipeline.bench.ts): its count would add a process. */
const names = callContenders(client)
  .map((contender) => contender.name)
  .filter((name) => !name.startsWith('cockatiel'))
  .filter((name) => ONLY === undefined || ONLY.some((part) => name.includes(part)));
await client.close();
/**
 * The worker bundled to plain JS, packages left external: node under valgrind starts in a third of
 * the time without tsx. It lives in the repository (.tmp/), where `mcp-tx` resolves to the build,
 * as in the other benchmarks.
 */
const worker = new URL('../.tmp/bench/instructionsWorker.mjs', import.meta.url).pathname;
await build({
  entryPoints: [new URL('./instructionsWorker.ts', import.meta.url).pathname],
  outfile: worker,
  bundle: true,
  format: 'esm',
  platform: 'node',
  packages: 'external',
  logLevel: 'warning',
});

function hasCallgrind(): boolean {
  // callgrind_annotate --version exits 255: a tool is there when it could be started at all.
  const found = (command: string) => spawnSync(command, ['--version']).error === undefined;
  return found('valgrind') && found('callgrind_control') && found('callgrind_annotate');
}

/**
 * V8 compiling (TurboFan, Sparkplug, the parser, deoptimization): work a process does while it
 * tiers code up, whenever V8 decides, not per call. Counted apart and left out of the per-call
 * figures, which would otherwise move by tens of per cent from run to run.
 */
const JIT_COMPILATION =
  /v8::internal::(compiler|baseline|interpreter|Compiler|Parser|PreParser|parsing|Scanner|Deoptimizer|maglev|CodeGenerator|Zone)/;
/**
 * V8 collecting garbage: when a collection lands (a young one every few dozen calls, an old one
 * now and then) moves a measurement by tens of per cent; what a call costs the collector is its
 * bytes allocated, measured apart.
 */
const GARBAGE_COLLECTION =
  /(Scaveng|MarkCompact|Marking|Sweep|Heap::|heap::|Evacuat|GCTracer|RememberedSet|SlotSet|MemoryAllocator|ObjectVisitor|BodyDescriptor|IterateObjectCache|MinorMC|ConcurrentMark|WeakObjects|PagedSpace|NewSpace|LargeObjectSpace|FreeList)/;

/** Instructions of the dump of `dir` whose trigger is `dump <label>`: all of them, and those of V8 compiling code or collecting garbage. */
function dumpCounts(dir: string, label: string): { total: number; leftOut: number } {
  for (const file of readdirSync(dir)) {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    if (!text.includes(`desc: Trigger: dump ${label}\n`)) continue;
    const total = Number(text.match(/^totals: (\d+)/m)?.[1]);
    const annotated = spawnSync('callgrind_annotate', ['--threshold=100', path], { encoding: 'utf8' }).stdout;
    let leftOut = 0;
    for (const line of annotated.split('\n')) {
      if (JIT_COMPILATION.test(line) || GARBAGE_COLLECTION.test(line))
        leftOut += Number(line.trim().split(' ')[0]?.replaceAll(',', ''));
    }
    return { total, leftOut };
  }
  throw new Error(`no callgrind dump ${label} in ${dir}`);
}

/** Instructions per measured call of `name`, in its own process under callgrind. */
async function instructionsPerCall(name: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tx-callgrind-'));
  try {
    await run('valgrind', [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${join(dir, 'cg')}`,
      process.execPath,
      '--single-threaded',
      ...EXTRA_NODE_FLAGS,
      '--hash-seed=1',
      '--random-seed=1',
      `--max-semi-space-size=${SEMI_SPACE_MB}`,
      `--min-semi-space-size=${SEMI_SPACE_MB}`,
      worker,
      'callgrind',
      name,
      String(WARM_UP),
      String(INSTRUMENTED_WARM_UP),
      String(MEASURED),
    ]);
    const counted = (label: string) => {
      const { total, leftOut } = dumpCounts(dir, label);
      return total - leftOut;
    };
    const controls = Math.min(counted('empty'), counted('empty2'));
    return (counted('measured') - controls) / MEASURED;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function allInstructions(): Promise<Map<string, number>> {
  const results = new Map<string, number>();
  const queue = Array.from({ length: RUNS }, () => names).flat();
  const lane = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const count = await instructionsPerCall(name);
      console.log(`  ${name}: ${kilo(count)} k`);
      results.set(name, Math.min(results.get(name) ?? count, count));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  return results;
}

async function bytesPerCall(): Promise<Record<string, number>> {
  const flags = ['--expose-gc', '--min-semi-space-size=128', '--max-semi-space-size=128'];
  const { stdout } = await run(process.execPath, [...flags, worker, 'bytes']);
  return JSON.parse(stdout.trim().split('\n').at(-1) as string);
}

const kilo = (value: number) => (value / 1_000).toFixed(1);

function contenderTable(
  instructions: Map<string, number> | undefined,
  bytes: Record<string, number>,
): string {
  const bare = instructions?.get(BARE) as number;
  const rows = names.map((name) => {
    const count = instructions?.get(name);
    const counted = count === undefined ? '– | –' : `${kilo(count)} | ${(count / bare).toFixed(2)}×`;
    const extra = (bytes[name] as number) - (bytes[META] as number);
    return `| ${name} | ${counted} | ${kilo(bytes[name] as number)} | ${extra >= 0 ? '+' : ''}${kilo(extra)} |`;
  });
  return [
    '| contender | kInstr/call | × bare | KB allocated/call | KB over bare + `_meta` |',
    '|---|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

/** Where `call$`'s and a keyed call's instructions over bare go, stage by stage. */
function attributionTable(instructions: Map<string, number>): string {
  const at = (name: string) => instructions.get(name) as number;
  const stage = (name: string) => at(name) - at(ATTEMPT);
  const rows: [string, number][] = [
    ['the MCP-Tx `_meta` on the wire (bare + `_meta` − bare)', at(META) - at(BARE)],
    ['an RxJS wrapper: defer + retry + firstValueFrom (floor − bare + `_meta`)', at(FLOOR) - at(META)],
    ["`attempt$`'s own work (`attempt$` − floor)", at(ATTEMPT) - at(FLOOR)],
    ["`call$`'s stages over `attempt$` (retry, track, dedupe pass-through)", at(CALL) - at(ATTEMPT)],
    ['a new idempotency key (keyed `call$` − `call$`)', at(KEYED) - at(CALL)],
    ['of which the memory store itself (keyed floor − bare + `_meta`)', at(KEYED_FLOOR) - at(META)],
  ];
  for (const name of names.filter((candidate) => candidate.startsWith('attempt$ + '))) {
    rows.push([`${name.slice('attempt$ + '.length)} alone, over \`attempt$\``, stage(name)]);
  }
  return [
    '| where | kInstr/call | % of bare |',
    '|---|---:|---:|',
    ...rows.map(
      ([what, count]) => `| ${what} | ${kilo(count)} | ${((100 * count) / at(BARE)).toFixed(1)} % |`,
    ),
  ].join('\n');
}

const callgrind = hasCallgrind();
const bytes = await bytesPerCall();
const instructions = callgrind ? await allInstructions() : undefined;
const how = callgrind
  ? `Instructions: \`valgrind --tool=callgrind\`, each contender in ${RUNS} processes of its own, the lowest kept (node --single-threaded, --hash-seed/--random-seed=1, --max/min-semi-space-size=${SEMI_SPACE_MB}), ${WARM_UP} calls uninstrumented + ${INSTRUMENTED_WARM_UP} instrumented, then counters zeroed around ${MEASURED} sequential calls (minus the smaller of two empty segments: the control commands), V8's JIT compilation and garbage collection left out (they run when V8 decides, not per call: the collector's share is the bytes allocated); the in-memory server is in the process and counted.`
  : 'Instructions: skipped, valgrind (callgrind_control, callgrind_annotate) is not installed.';
writeResults(
  'instructions',
  [
    `InMemoryTransport, \`echo\`. ${how} Allocation: heap growth over 500 calls in a fixed 128 MiB semi-space after a full GC, median of 5. ${machineLine()}.`,
    '',
    contenderTable(instructions, bytes),
    ...(instructions === undefined || ONLY !== undefined
      ? []
      : ['', 'Where the instructions over bare go:', '', attributionTable(instructions)]),
  ].join('\n'),
);
