/**
 * The default pipeline against a bare `client.callTool` over a real stdio transport: the `echo`
 * server runs in a child process (bench/stdioEchoServer.ts), as a local MCP server does.
 * Run: `npm run bench -- stdio`. BENCH_STDIO_CALLS / BENCH_STDIO_ROUNDS size it.
 */
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CORE, connectClient, writeCallComparison } from './contenders.js';

const CALLS = Number(process.env.BENCH_STDIO_CALLS ?? 1_000);
const ROUNDS = Number(process.env.BENCH_STDIO_ROUNDS ?? 9);
/** Parallel samples are longer than sequential ones: 2 000 calls over stdio take only about 50 ms. */
const PARALLEL_CALLS = CALLS * 8;
const IN_FLIGHT = 64;

const client = await connectClient(
  new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', new URL('./stdioEchoServer.ts', import.meta.url).pathname],
    stderr: 'inherit',
  }),
);
await writeCallComparison(
  'stdio',
  client,
  {
    calls: CALLS,
    parallelCalls: PARALLEL_CALLS,
    rounds: ROUNDS,
    inFlight: IN_FLIGHT,
    warmUpCalls: 300,
  },
  `stdio, server in a child process (client and server share the cores), ${CALLS} sequential calls and ${PARALLEL_CALLS} calls with ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds (ratios: median of the per-round ratios)`,
  CORE,
);
