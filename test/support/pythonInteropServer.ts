/**
 * The mcp-tx servers of the Python MCP-Tx interop captures (`../shared/interop/python-mcp-tx-0.1.0/`),
 * rebuilt for replaying the Python client's lines to them over stdio
 * (`test/e2e/pythonInterop.test.ts`). Every tool with an effect is wrapped in `txTool` on a memory
 * store, and the server advertises MCP-Tx with the `dedupe` feature.
 *
 * `--profile demo` is `src/cli/demoServer.ts` (`mcp-tx-demo`) as the capture
 * `python-client-to-ts-server.jsonl` met it, answering the same:
 * - `charge` ({ order, cents }): one order in seven fails its first run with `TEMPORARY_FAILURE`;
 * - `lookup` ({ sku }, read-only): one SKU in twenty-five is slow on its first run — `--slow-ms`
 *   (1 500), where the demo hangs until cancelled: the Python client's timeout retry (1 s) then
 *   finds it still running — and here it is wrapped in `txTool`, where the demo's is not;
 * - `stats`: `{ charges, runs, lookups }`.
 *
 * `--profile slow` is the capture `python-client-timeout-retry.jsonl`'s `ts-slow`: `charge` takes
 * `--slow-ms` (1 500) and `stats` answers `{ charges, runs }`.
 *
 * `charges` counts each order's completed charges (the effect), `runs` each order's handler runs,
 * `lookups` each SKU's lookup runs.
 */
import { setTimeout as wait } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { mcpTxServerCapabilities } from '../../src/core/wire.js';
import { memoryIdempotencyStore } from '../../src/idempotency/memoryStore.js';
import { txTool } from '../../src/server/txTool.js';

const { values } = parseArgs({
  options: { profile: { type: 'string', default: 'demo' }, 'slow-ms': { type: 'string', default: '1500' } },
});
const profile = values.profile;
if (profile !== 'demo' && profile !== 'slow') throw new Error(`unknown --profile ${profile}`);
const slowMs = Number(values['slow-ms']);

const server = new McpServer(
  { name: profile === 'demo' ? 'mcp-tx-demo' : 'ts-slow', version: '1.0.0' },
  { capabilities: mcpTxServerCapabilities() },
);
const store = memoryIdempotencyStore();
const charges: Record<string, number> = {};
const runs: Record<string, number> = {};
const lookups: Record<string, number> = {};

/** Counts one more for `name` in `counts` and says which one this is (1 for the first). */
const count = (counts: Record<string, number>, name: string) => {
  counts[name] = (counts[name] ?? 0) + 1;
  return counts[name];
};
/** The demo server's small stable number from a name, which picks the flaky ones and the prices. */
const spread = (name: string) => [...name].reduce((sum, char) => (sum * 31 + char.charCodeAt(0)) % 10_007, 7);
const sleep = (ms: number, signal?: AbortSignal) => wait(ms, undefined, { signal }).catch(() => undefined);
const json = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }] });

server.registerTool(
  'charge',
  profile === 'demo'
    ? {
        description: 'Charges an order (a side effect); sometimes fails with TEMPORARY_FAILURE',
        inputSchema: { order: z.string(), cents: z.number().int() },
      }
    : { inputSchema: { order: z.string(), cents: z.number().int() } },
  txTool(
    async ({ order, cents }: { order: string; cents: number }) => {
      const run = count(runs, order);
      if (profile === 'slow') await sleep(slowMs);
      else if (run === 1 && spread(order) % 7 === 0)
        throw new Error('TEMPORARY_FAILURE: payment gateway busy');
      else await sleep(1 + (spread(order) % 5));
      count(charges, order);
      return json({ order, charged: cents });
    },
    { tool: 'charge', store },
  ),
);

if (profile === 'demo') {
  server.registerTool(
    'lookup',
    {
      description: 'Looks up a price; sometimes hangs',
      inputSchema: { sku: z.string() },
      annotations: { readOnlyHint: true },
    },
    txTool(
      async ({ sku }: { sku: string }, extra) => {
        const slow = count(lookups, sku) === 1 && spread(sku) % 25 === 0;
        await sleep(slow ? slowMs : 2 + (spread(sku) % 19), extra.signal);
        return json({ sku, cents: 100 + (spread(sku) % 900) });
      },
      { tool: 'lookup', store },
    ),
  );
}

server.registerTool(
  'stats',
  profile === 'demo'
    ? {
        description: 'How many times each order was charged',
        inputSchema: {},
        annotations: { readOnlyHint: true },
      }
    : { inputSchema: {} },
  async () => json(profile === 'demo' ? { charges, runs, lookups } : { charges, runs }),
);

await server.connect(new StdioServerTransport());
