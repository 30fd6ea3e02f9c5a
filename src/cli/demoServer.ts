/**
 * The demo's MCP server, started by `mcp-tx demo` as a child process and spoken to over stdio. It
 * advertises MCP-Tx and has flaky tools, flaky in a fixed way so that every run tells the same story:
 *
 * - `charge` (a side effect, exactly-once per idempotency key through `txTool` and a memory store):
 *   one order in seven fails its first attempt with `TEMPORARY_FAILURE`;
 * - `lookup` (read-only): answers in 2–20 ms, but one SKU in twenty-five hangs on its first attempt
 *   until the client times out and cancels it;
 * - `stats` (read-only): how many times each order was charged.
 */
import { setTimeout as wait } from 'node:timers/promises';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { mcpTxServerCapabilities } from '../core/wire.js';
import { memoryIdempotencyStore } from '../idempotency/memoryStore.js';
import { txTool } from '../server/txTool.js';

const server = new McpServer(
  { name: 'mcp-tx-demo', version: '1.0.0' },
  { capabilities: mcpTxServerCapabilities() },
);
const charges: Record<string, number> = {};
const requests = new Map<string, number>();

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

server.registerTool(
  'charge',
  {
    description: 'Charges an order (a side effect); sometimes fails with TEMPORARY_FAILURE',
    inputSchema: { order: z.string(), cents: z.number().int() },
  },
  txTool(
    async ({ order, cents }) => {
      if (nth(`charge:${order}`) === 1 && spread(order) % 7 === 0) {
        throw new Error('TEMPORARY_FAILURE: payment gateway busy');
      }
      charges[order] = (charges[order] ?? 0) + 1;
      await sleep(1 + (spread(order) % 5));
      return json({ order, charged: cents });
    },
    { tool: 'charge', store: memoryIdempotencyStore() },
  ),
);

server.registerTool(
  'lookup',
  {
    description: 'Looks up a price; sometimes hangs',
    inputSchema: { sku: z.string() },
    annotations: { readOnlyHint: true },
  },
  async ({ sku }, extra) => {
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
  async () => json({ charges }),
);

await server.connect(new StdioServerTransport());
