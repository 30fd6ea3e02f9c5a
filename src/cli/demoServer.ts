/**
 * The demo's MCP server, started by `mcp-tx demo` as a child process and spoken to over stdio. It
 * advertises MCP-Tx and has flaky tools, flaky in a fixed way so that every run tells the same story:
 *
 * - `charge` (a side effect, exactly-once per idempotency key through `txTool`): one order in seven
 *   fails its first attempt with `TEMPORARY_FAILURE`. Charges and completed keys are kept in the
 *   `--ledger <file>` (JSONL, see {@link ledgerStore}), each charge written with its key's completion
 *   in one line: a server started again on the same ledger knows what it charged and answers a
 *   retry of a completed key from it.
 * - `lookup` (read-only): answers in 2–20 ms, but one SKU in twenty-five hangs on its first attempt
 *   until the client times out and cancels it;
 * - `stats` (read-only): how many times each order was charged.
 *
 * With `--crash-after <n>`, once it has received n tool calls it crashes on purpose (exit 1) at the
 * next charge, right after writing it to the ledger and before answering: the answer is lost, and
 * only the ledger can tell the client's retry that the order was charged.
 */
import { setTimeout as wait } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import * as z from 'zod';
import { mcpTxServerCapabilities } from '../core/wire.js';
import { withEffect } from '../server/effect.js';
import { txTool } from '../server/txTool.js';
import { ledgerStore } from './ledgerStore.js';

const { values } = parseArgs({
  options: { ledger: { type: 'string' }, 'crash-after': { type: 'string' } },
});
if (values.ledger === undefined) throw new Error('demoServer: --ledger <file> is required');
const crashAfter =
  values['crash-after'] === undefined ? Number.POSITIVE_INFINITY : Number(values['crash-after']);

const server = new McpServer(
  { name: 'mcp-tx-demo', version: '1.0.0' },
  { capabilities: mcpTxServerCapabilities() },
);
const charges: Record<string, number> = {};
const requests = new Map<string, number>();
let calls = 0;
let replayed = false;

const store = ledgerStore<{ order: string }>(values.ledger, ({ order }) => {
  charges[order] = (charges[order] ?? 0) + 1;
  if (replayed && calls >= crashAfter) {
    process.stderr.write(`demo server: crashing on purpose after charging ${order}, before answering\n`);
    process.exit(1);
  }
});
replayed = true;

/** Counts the requests for `key` and says which one this is (1 for the first). */
const nth = (key: string) => {
  const count = (requests.get(key) ?? 0) + 1;
  requests.set(key, count);
  return count;
};
/** A small stable number from a name, to pick the flaky ones and the latencies. */
const spread = (name: string) => [...name].reduce((sum, char) => (sum * 31 + char.charCodeAt(0)) % 10_007, 7);
/** Waits `ms`, or less when `signal` aborts (the request was cancelled). */
const sleep = (ms: number, signal?: AbortSignal) => wait(ms, undefined, { signal }).catch(() => undefined);
const json = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }] });

const charge = txTool(
  async ({ order, cents }: { order: string; cents: number }) => {
    if (nth(`charge:${order}`) === 1 && spread(order) % 7 === 0) {
      throw new Error('TEMPORARY_FAILURE: payment gateway busy');
    }
    await sleep(1 + (spread(order) % 5));
    return withEffect(json({ order, charged: cents }), { order });
  },
  { tool: 'charge', store },
);
server.registerTool(
  'charge',
  {
    description: 'Charges an order (a side effect); sometimes fails with TEMPORARY_FAILURE',
    inputSchema: { order: z.string(), cents: z.number().int() },
  },
  (args, extra) => {
    calls += 1;
    return charge(args, extra);
  },
);

server.registerTool(
  'lookup',
  {
    description: 'Looks up a price; sometimes hangs',
    inputSchema: { sku: z.string() },
    annotations: { readOnlyHint: true },
  },
  async ({ sku }, extra) => {
    calls += 1;
    const hangs = nth(`lookup:${sku}`) === 1 && spread(sku) % 25 === 0;
    await sleep(hangs ? 60_000 : 2 + (spread(sku) % 19), extra.signal);
    return json({ sku, cents: 100 + (spread(sku) % 900) });
  },
);

server.registerTool(
  'stats',
  {
    description: 'How many times each order was charged',
    inputSchema: {},
    annotations: { readOnlyHint: true },
  },
  async () => {
    calls += 1;
    return json({ charges });
  },
);

await server.connect(new StdioServerTransport());
