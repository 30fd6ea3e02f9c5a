/**
 * The default pipeline against a bare `client.callTool` on the same in-process server
 * (InMemoryTransport), plus cockatiel's retry + breaker + timeout wrap for comparison.
 * Run: `npm run bench` (writes bench/results.md).
 * BENCH_CALLS / BENCH_ROUNDS size it.
 */
import { BARE, callContenders, connectInMemory } from './contenders.js';
import { comparisonTable, machineLine, measureContenders, writeResults } from './harness.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const IN_FLIGHT = 64;

const client = await connectInMemory();
const entrants = callContenders(client);
const comparison = await measureContenders(entrants, {
  calls: CALLS,
  rounds: ROUNDS,
  inFlight: IN_FLIGHT,
  warmUpCalls: 500,
});
await client.close();

writeResults(
  'pipeline',
  [
    `InMemoryTransport, ${CALLS} sequential calls and ${CALLS * 2} calls with ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds; ${machineLine()}.`,
    '',
    comparisonTable(
      entrants.map(({ name }) => name),
      comparison,
      BARE,
      IN_FLIGHT,
    ),
  ].join('\n'),
);
