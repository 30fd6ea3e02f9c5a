/**
 * The default pipeline against a bare `client.callTool` on the same in-process server
 * (InMemoryTransport), plus cockatiel's retry + breaker + timeout wrap for comparison.
 * Run: `npm run bench` (writes bench/results.md).
 * BENCH_CALLS / BENCH_ROUNDS size it.
 */
import { writeFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
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
import { firstValueFrom } from 'rxjs';
import { z } from 'zod';
import { createMcpTx, mcpTxClientCapabilities, mcpTxServerCapabilities } from '../src/index.js';
import { type Contender, compare, machineLine, sequentialMicros, throughput } from './harness.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const IN_FLIGHT = 64;

async function connect(): Promise<Client> {
  const server = new McpServer(
    { name: 'bench', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool('echo', { inputSchema: { n: z.number() } }, async ({ n }) => ({
    content: [{ type: 'text', text: JSON.stringify({ n }) }],
  }));
  const client = new Client({ name: 'bench', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  await client.connect(clientTransport);
  return client;
}

function contenders(client: Client): Contender[] {
  const tx = createMcpTx(client);
  const args = { n: 1 };
  const cockatiel = wrap(
    retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
    circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
    timeout(30_000, TimeoutStrategy.Aggressive),
  );
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
  return [
    { name: 'bare client.callTool', call: () => client.callTool({ name: 'echo', arguments: args }) },
    {
      name: 'bare callTool + MCP-Tx _meta',
      call: () => client.callTool({ name: 'echo', arguments: args, _meta: txMeta() }),
    },
    { name: 'mcp-tx attempt$ (no policies)', call: () => firstValueFrom(tx.attempt$('echo', args)) },
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

const client = await connect();
const entrants = contenders(client);
for (const entrant of entrants) await sequentialMicros(entrant.call, 500); // warm up
const sequential = await compare(entrants, ROUNDS, (entrant) => sequentialMicros(entrant.call, CALLS));
const parallel = await compare(entrants, ROUNDS, (entrant) => throughput(entrant.call, CALLS * 2, IN_FLIGHT));
await client.close();

const bareSequential = sequential.get('bare client.callTool') as number;
const bareParallel = parallel.get('bare client.callTool') as number;
const rows = entrants.map(({ name }) => {
  const micros = sequential.get(name) as number;
  const perSecond = parallel.get(name) as number;
  return `| ${name} | ${micros.toFixed(1)} | ${(micros / bareSequential).toFixed(2)}× | ${Math.round(perSecond)} | ${(perSecond / bareParallel).toFixed(2)}× |`;
});
const table = [
  `InMemoryTransport, ${CALLS} sequential calls and ${CALLS * 2} calls with ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds; ${machineLine()}.`,
  '',
  '| call | sequential µs/call | vs bare | calls/s, 64 in flight | vs bare |',
  '|---|---:|---:|---:|---:|',
  ...rows,
].join('\n');
console.log(table);
writeFileSync(new URL('./results/pipeline.md', import.meta.url), `${table}\n`);
