/**
 * What a connection mcp-tx keeps costs and gives:
 *
 * 1. Recovery: the `echo` server over stdio (bench/stdioEchoServer.ts in a child process, started
 *    by `createMcpTx(connect)`), 4 calls always in flight, killed with SIGKILL 20 times; for each
 *    kill, the time until mcp-tx notices, until it is connected to a new server, and until the next
 *    call completes — with the default reconnect policy (100 ms before the first reconnect) and with
 *    `baseDelayMs: 0`. A new server's start (node + tsx + the SDK, then `initialize`) is most of it.
 * 2. The cost of a call on a connected `createMcpTx(connect)` against `createMcpTx(client)`:
 *    InMemoryTransport (where mcp-tx's own work is the largest share), sequential and 64 in flight.
 *
 * Run: `npm run bench -- reconnect`. BENCH_RECONNECT_CRASHES, BENCH_CALLS, BENCH_ROUNDS size it.
 */
import { performance } from 'node:perf_hooks';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { type ConnectionState, createMcpTx, type McpTx, type ReconnectPolicy } from 'mcp-tx';
import { firstValueFrom } from 'rxjs';
import { connectInMemory, echoServer } from './contenders.js';
import { type Contender, machineLine, measureContenders, percentile, writeResults } from './harness.js';

const CRASHES = Number(process.env.BENCH_RECONNECT_CRASHES ?? 20);
const CALLS = Number(process.env.BENCH_CALLS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const IN_FLIGHT = 64;
const LOAD_IN_FLIGHT = 4;

/** Milliseconds from a kill to each step of the recovery. */
interface Recovery {
  readonly noticed: number;
  /** From the transport factory's call (the attempt that succeeded) to `connected`: a new server's start. */
  readonly start: number;
  readonly connected: number;
  readonly nextCall: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills the stdio server `crashes` times under a steady load; how long each recovery took. */
async function recoveries(reconnect: ReconnectPolicy, crashes: number): Promise<Recovery[]> {
  const transports: StdioClientTransport[] = [];
  const madeAt: number[] = [];
  const tx = createMcpTx(
    () => {
      madeAt.push(performance.now());
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', new URL('./stdioEchoServer.ts', import.meta.url).pathname],
        stderr: 'inherit',
      });
      transports.push(transport);
      return transport;
    },
    { reconnect, retry: { maxAttempts: 10, baseDelayMs: 10, retryAmbiguous: true }, timeoutMs: 30_000 },
  );
  const seen: Array<{ state: ConnectionState['state']; at: number }> = [];
  tx.connection$.subscribe(({ state }) => seen.push({ state, at: performance.now() }));
  await tx.ready;

  let running = true;
  const completions: number[] = [];
  const worker = async () => {
    for (let n = 0; running; n++) {
      await tx.call('echo', { n }).then(
        () => completions.push(performance.now()),
        () => undefined,
      );
    }
  };
  const workers = Array.from({ length: LOAD_IN_FLIGHT }, worker);

  const measured: Recovery[] = [];
  for (let crash = 0; crash < crashes; crash++) {
    await sleep(100);
    const pid = transports.at(-1)?.pid as number;
    const connectedBefore = seen.filter(({ state }) => state === 'connected').length;
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    await waitFor(() => seen.filter(({ state }) => state === 'connected').length > connectedBefore);
    const connectedAt = seen.findLast(({ state }) => state === 'connected')?.at as number;
    await waitFor(() => completions.some((at) => at > connectedAt));
    const noticedAt = seen.find(({ state, at }) => state === 'reconnecting' && at >= killedAt)?.at as number;
    measured.push({
      noticed: noticedAt - killedAt,
      start: connectedAt - (madeAt.at(-1) as number),
      connected: connectedAt - killedAt,
      nextCall: (completions.find((at) => at > connectedAt) as number) - killedAt,
    });
  }
  running = false;
  await Promise.all(workers);
  await tx.close();
  return measured;
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(1);
}

function recoveryRow(label: string, recoveries: readonly Recovery[]): string {
  const at = (key: keyof Recovery, p: number) =>
    percentile(
      recoveries.map((recovery) => recovery[key]),
      p,
    ).toFixed(0);
  const cell = (key: keyof Recovery) => `${at(key, 50)} / ${at(key, 95)}`;
  return `| ${label} | ${cell('noticed')} | ${cell('connected')} | ${cell('start')} | ${cell('nextCall')} |`;
}

/** `createMcpTx(connect)` and `createMcpTx(client)` on two identical in-process servers, both connected. */
async function callContenders(): Promise<{ contenders: Contender[]; close: () => Promise<void> }> {
  const userClient = await connectInMemory();
  const owned = createMcpTx(async () => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await echoServer().connect(serverSide);
    return clientSide;
  });
  await owned.ready;
  const user = createMcpTx(userClient);
  const args = { n: 1 };
  const entry = (name: string, tx: McpTx, how: 'call$' | 'attempt$'): Contender => ({
    name,
    call: () => firstValueFrom(how === 'call$' ? tx.call$('echo', args) : tx.attempt$('echo', args)),
  });
  return {
    contenders: [
      entry('createMcpTx(client): attempt$', user, 'attempt$'),
      entry('createMcpTx(connect): attempt$', owned, 'attempt$'),
      entry('createMcpTx(client): call$', user, 'call$'),
      entry('createMcpTx(connect): call$', owned, 'call$'),
    ],
    close: async () => {
      await owned.close();
      await user.close();
    },
  };
}

const defaults = await recoveries({}, CRASHES);
const immediate = await recoveries({ baseDelayMs: 0 }, CRASHES);

const { contenders, close } = await callContenders();
const { sequential, parallel } = await measureContenders(contenders, {
  calls: CALLS,
  rounds: ROUNDS,
  inFlight: IN_FLIGHT,
  warmUpCalls: 500,
});
await close();
const baseline = (name: string) => name.replace('connect', 'client');
const costRows = contenders.map(({ name }) => {
  const micros = sequential.get(name) as number;
  const perSecond = parallel.get(name) as number;
  return `| ${name} | ${micros.toFixed(1)} | ${(micros / (sequential.get(baseline(name)) as number)).toFixed(2)}× | ${Math.round(perSecond)} | ${(perSecond / (parallel.get(baseline(name)) as number)).toFixed(2)}× |`;
});

writeResults(
  'reconnect',
  [
    `Recovery: the stdio \`echo\` server in a child process (node + tsx), ${LOAD_IN_FLIGHT} calls always in flight, killed with SIGKILL ${CRASHES} times per policy; ms from the kill, p50 / p95. ${machineLine()}.`,
    '',
    '| reconnect policy | noticed (`reconnecting`) | connected to a new server | of which the new server’s start | next call completed |',
    '|---|---:|---:|---:|---:|',
    recoveryRow('default (first reconnect after 100 ms ± 20 %)', defaults),
    recoveryRow('`baseDelayMs: 0`', immediate),
    '',
    `A call on a connected McpTx: InMemoryTransport, ${CALLS} sequential calls and ${CALLS * 2} with ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds; the ratio is to the same call on \`createMcpTx(client)\`.`,
    '',
    `| call | sequential µs/call | vs client | calls/s, ${IN_FLIGHT} in flight | vs client |`,
    '|---|---:|---:|---:|---:|',
    ...costRows,
  ].join('\n'),
);
