/**
 * The default pipeline, `attempt$` and each stage alone against a bare `client.callTool` on the same
 * in-process server (InMemoryTransport), interleaved in one process, plus cockatiel's retry +
 * breaker + timeout wrap for comparison. Instructions per call: bench/instructions.bench.ts.
 * Run: `npm run bench` (writes bench/results.md).
 * BENCH_CALLS / BENCH_ROUNDS size it.
 */
import { connectInMemory, writeCallComparison } from './contenders.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const IN_FLIGHT = 64;

const client = await connectInMemory();
await writeCallComparison(
  'pipeline',
  client,
  {
    calls: CALLS,
    rounds: ROUNDS,
    inFlight: IN_FLIGHT,
    warmUpCalls: 500,
  },
  `InMemoryTransport, ${CALLS} sequential calls and ${CALLS * 2} calls with ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds (ratios: median of the per-round ratios)`,
);
