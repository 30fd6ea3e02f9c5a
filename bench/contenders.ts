/**
 * What the benchmarks measure: the `echo` server they call and the ways of calling it (bare SDK,
 * mcp-tx, cockatiel), shared by the InMemory and stdio comparisons.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleAll,
  retry,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import {
  CircuitBreaker,
  createMcpTx,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  tokenBucket,
} from 'mcp-tx';
import { circuitBreak, dedupe, throttle, trace } from 'mcp-tx/operators';
import { defer, firstValueFrom, retry as rxRetry } from 'rxjs';
import { z } from 'zod';
import {
  type ComparisonSize,
  type Contender,
  comparisonTable,
  machineLine,
  measureContenders,
  writeResults,
} from './harness.js';

/**
 * The benchmarks' MCP-Tx server: one `echo` tool that answers `{ n }` as JSON text. `onCall` runs
 * as each call reaches the handler.
 *
 * @example
 * let calls = 0;
 * await echoServer(() => calls++).connect(serverTransport);
 */
export function echoServer(onCall: () => void = () => undefined): McpServer {
  const server = new McpServer(
    { name: 'bench', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool('echo', { inputSchema: { n: z.number() } }, async ({ n }) => {
    onCall();
    return { content: [{ type: 'text', text: JSON.stringify({ n }) }] };
  });
  return server;
}

/**
 * A client advertising MCP-Tx, connected through `transport`.
 *
 * @example
 * const client = await connectClient(new StdioClientTransport({ command: 'node', args: ['server.js'] }));
 */
export async function connectClient(transport: Transport): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  await client.connect(transport);
  return client;
}

/**
 * A client connected to `server` (by default a fresh {@link echoServer}) over InMemoryTransport.
 *
 * @example
 * const client = await connectInMemory();
 * await client.callTool({ name: 'echo', arguments: { n: 1 } });
 */
export async function connectInMemory(server: McpServer = echoServer()): Promise<Client> {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  return connectClient(clientTransport);
}

/**
 * The ways of calling `echo` that the transport benchmarks compare: the bare SDK call (the
 * baseline, named {@link BARE}), with MCP-Tx `_meta`, the floor of an RxJS wrapper (`defer` +
 * `retry` + `firstValueFrom` around the call with `_meta`), the floor of a keyed call
 * ({@link KEYED_FLOOR}), mcp-tx's `attempt$` alone and with each stage of the default pipeline alone (a limiter with a free permit, a closed breaker, `trace` with
 * no OpenTelemetry SDK registered, `dedupe` with a new key per call), the default `call$` (with and
 * without a new idempotency key), and cockatiel's retry + breaker + timeout wrap. {@link CORE} names
 * the ones the stdio comparison runs.
 *
 * @example
 * const { sequential } = await measureContenders(callContenders(client), { calls: 4_000, rounds: 7, inFlight: 64, warmUpCalls: 500 });
 */
export function callContenders(client: Client): Contender[] {
  const tx = createMcpTx(client);
  const args = { n: 1 };
  const cockatiel = wrap(
    retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
    circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
    timeout(30_000, TimeoutStrategy.Aggressive),
  );
  const freePermits = throttle(tokenBucket({ ratePerSecond: 1e9, burst: 1e9 }));
  const closedBreaker = circuitBreak(new CircuitBreaker());
  const traced = trace();
  const deduped = dedupe(memoryIdempotencyStore());
  let key = 0;
  const txMeta = () => ({
    mcp_tx: {
      version: '0.1.0',
      request_id: '019ab3c2-5e1f-7a3b-9c4d-2e8f1a6b7c90',
      expect_ack: true,
      retry_count: 0,
      timeout_ms: 30_000,
      timestamp: new Date().toISOString(),
    },
  });
  const withMeta = () => client.callTool({ name: 'echo', arguments: args, _meta: txMeta() });
  const floorStore = memoryIdempotencyStore();
  /** What any keyed call on a memory store must do: take the key, call, keep the result under it. */
  const keyedFloor = async () => {
    const storeKey = `echo:f${key++}`;
    await floorStore.begin(storeKey, FLOOR_FINGERPRINT, 120_000);
    const result = (await withMeta()) as CallToolResult;
    await floorStore.complete(storeKey, FLOOR_FINGERPRINT, { kind: 'result', result }, 300_000);
    return result;
  };
  return [
    { name: BARE, call: () => client.callTool({ name: 'echo', arguments: args }) },
    { name: 'bare callTool + MCP-Tx _meta', call: withMeta },
    { name: FLOOR, call: () => firstValueFrom(defer(withMeta).pipe(rxRetry(2))) },
    { name: KEYED_FLOOR, call: keyedFloor },
    { name: 'mcp-tx attempt$ (no policies)', call: () => firstValueFrom(tx.attempt$('echo', args)) },
    {
      name: 'attempt$ + throttle (free permit)',
      call: () => firstValueFrom(tx.attempt$('echo', args).pipe(freePermits)),
    },
    {
      name: 'attempt$ + circuitBreak (closed)',
      call: () => firstValueFrom(tx.attempt$('echo', args).pipe(closedBreaker)),
    },
    {
      name: 'attempt$ + trace (no OTel SDK)',
      call: () => firstValueFrom(tx.attempt$('echo', args).pipe(traced)),
    },
    {
      name: 'attempt$ + dedupe (new key)',
      call: () => firstValueFrom(tx.attempt$('echo', args, { idempotencyKey: `d${key++}` }).pipe(deduped)),
    },
    { name: 'mcp-tx call$ (default pipeline)', call: () => firstValueFrom(tx.call$('echo', args)) },
    {
      name: 'mcp-tx call$, new idempotency key',
      call: () => firstValueFrom(tx.call$('echo', args, { idempotencyKey: `k${key++}` })),
    },
    {
      name: 'cockatiel retry+breaker+timeout',
      call: () =>
        cockatiel.execute(({ signal }) =>
          client.callTool({ name: 'echo', arguments: args }, undefined, { signal }),
        ),
    },
  ];
}

/** The floor of an RxJS wrapper: `defer` + `retry` + `firstValueFrom` around the call with `_meta`. */
export const FLOOR = 'floor: defer(callTool + _meta) + retry';

/**
 * The floor of a keyed call on the memory store: `begin` and `complete` of a new key around the
 * call with `_meta` (a fixed fingerprint: no hashing), no RxJS, no dedupe bookkeeping.
 */
export const KEYED_FLOOR = 'keyed floor: store begin + callTool + _meta + complete';
const FLOOR_FINGERPRINT = '{"n":1}';

/** The contenders of the stdio comparison (the others are measured in memory only). */
export const CORE: readonly string[] = [
  'bare client.callTool',
  'bare callTool + MCP-Tx _meta',
  'mcp-tx attempt$ (no policies)',
  'mcp-tx call$ (default pipeline)',
  'mcp-tx call$, new idempotency key',
  'cockatiel retry+breaker+timeout',
];

/** How the time comparisons take turns, for the results' headings. */
export const INTERLEAVING =
  'each round takes turns in batches of 100 calls (640 with 64 in flight) of every contender; mcp-tx as built (dist/)';

/** The baseline contender's name. */
export const BARE = 'bare client.callTool';

/**
 * Measures the {@link callContenders} on `client` (those named in `only`, else all), closes it, and writes their comparison table to
 * bench/results/<name>.md under `heading` (how it was measured; the machine is added).
 *
 * @example
 * await writeCallComparison('pipeline', await connectInMemory(), size, 'InMemoryTransport, 4000 sequential calls');
 */
export async function writeCallComparison(
  name: string,
  client: Client,
  size: ComparisonSize,
  heading: string,
  only?: readonly string[],
): Promise<void> {
  const entrants = callContenders(client).filter((entrant) => only?.includes(entrant.name) ?? true);
  const comparison = await measureContenders(entrants, size);
  await client.close();
  const names = entrants.map((entrant) => entrant.name);
  writeResults(
    name,
    [
      `${heading}; ${INTERLEAVING}; ${machineLine()}.`,
      '',
      comparisonTable(names, comparison, BARE, size.inFlight),
    ].join('\n'),
  );
}
