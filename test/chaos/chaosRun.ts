/**
 * A seeded chaos run: CHAOS_CALLS keyed calls (default 2 000) through the default pipeline against a
 * txTool server behind a faulty transport (failed sends, lost responses, delays, dropped
 * connections with reconnects). Prints one JSON line of figures and exits on its own — a timer or
 * subscription left behind would keep the process alive, and the test that runs it would time out.
 *
 * Run: `npm run chaos` (10 000 calls) or `npx tsx test/chaos/chaosRun.ts`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { z } from 'zod';
import {
  createMcpTx,
  isTxError,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  type TxError,
  type TxMeta,
  txTool,
} from '../../src/index.js';
import { type FaultCounts, type FaultyTransport, faultyTransport } from '../../src/testing/index.js';
import { keepConnected } from '../support/reconnect.js';

const CALLS = Number(process.env.CHAOS_CALLS ?? 2_000);
const CONCURRENCY = 32;
const SEED = Number(process.env.CHAOS_SEED ?? 2026);
const faultOptions = {
  failRate: 0.15,
  dropResponseRate: 0.15,
  delayMs: [0, 2] as [number, number],
  disconnectAfter: 150,
};

let unhandled = 0;
process.on('unhandledRejection', (reason) => {
  unhandled += 1;
  if (process.env.CHAOS_DEBUG) console.error('unhandled', reason);
});

const effects = new Map<string, number>();
const serverStore = memoryIdempotencyStore({ maxEntries: CALLS * 2 });

/** A fresh server for each connection (as after a reconnect); the idempotency store outlives them. */
function newServer(): McpServer {
  const server = new McpServer(
    { name: 'chaos', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool(
    'transfer',
    { inputSchema: { id: z.string(), amount: z.number() } },
    txTool(
      async ({ id, amount }) => {
        effects.set(id, (effects.get(id) ?? 0) + 1);
        return { content: [{ type: 'text', text: JSON.stringify({ id, amount }) }] };
      },
      { tool: 'transfer', store: serverStore, inProgress: { waitMs: 1_000, pollMs: 2 } },
    ),
  );
  return server;
}

const totals: FaultCounts = { failedSends: 0, droppedResponses: 0, delayed: 0, disconnects: 0 };
const client = new Client({ name: 'chaos', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
const servers: McpServer[] = [];
let seed = SEED;

/** A new server (as after a restart) behind a new faulty connection; the idempotency store outlives them. */
async function openFaulty(): Promise<FaultyTransport> {
  const server = newServer();
  servers.push(server);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  seed += 1;
  return faultyTransport(clientSide, { ...faultOptions, seed });
}

const connection = await keepConnected(client, openFaulty, (transport) => {
  const { faults } = transport as FaultyTransport;
  for (const key of Object.keys(totals) as Array<keyof FaultCounts>) totals[key] += faults[key];
});
const tx = createMcpTx(client, {
  timeoutMs: 100,
  retry: { maxAttempts: 12, baseDelayMs: 2, maxDelayMs: 20 },
  dedupe: false, // the server alone makes each transfer happen once
});

const started = performance.now();
const outcomes = await lastValueFrom(
  from(Array.from({ length: CALLS }, (_, index) => index)).pipe(
    mergeMap(
      (index) =>
        tx.call('transfer', { id: `t${index}`, amount: index }, { idempotencyKey: `transfer-${index}` }).then(
          (result) => result.meta,
          (error: unknown) => error,
        ),
      CONCURRENCY,
    ),
    toArray(),
  ),
);
const seconds = (performance.now() - started) / 1_000;

connection.stop();
await tx.close({ timeoutMs: 1_000 });
await Promise.all(servers.map((server) => server.close()));

const failed = outcomes.filter((outcome): outcome is TxError => isTxError(outcome));
const completed = outcomes.filter((outcome): outcome is TxMeta => !isTxError(outcome));
const attempts = completed.reduce((sum, meta) => sum + meta.attempts, 0);
const figures = {
  calls: CALLS,
  completed: completed.length,
  failed: failed.length,
  failureCodes: [...new Set(failed.map((error) => error.code))],
  distinctKeysExecuted: effects.size,
  sideEffects: [...effects.values()].reduce((sum, count) => sum + count, 0),
  duplicatesServed: completed.filter((meta) => meta.duplicate).length,
  attempts,
  connections: connection.connections,
  faults: totals,
  unhandledRejections: unhandled,
  seconds: Number(seconds.toFixed(2)),
  callsPerSecond: Math.round(CALLS / seconds),
};
console.log(JSON.stringify(figures));
