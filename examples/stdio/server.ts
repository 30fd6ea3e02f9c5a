/**
 * The stdio quickstart's server: a real MCP server advertising MCP-Tx, with one tool that has a side
 * effect (`charge`, exactly-once per idempotency key with `txTool`), a read-only one (`get_weather`),
 * and `charges`, which says how many times each order was charged. `examples/stdio/client.ts` starts
 * it as a child process; it talks MCP over its stdin and stdout and exits when its stdin ends.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { mcpTxServerCapabilities, memoryIdempotencyStore, txTool } from 'mcp-tx';
import { z } from 'zod';

/** The side effect: a card charged. Counted per order, so that the client can check each ran once. */
const charges: Record<string, number> = {};
async function chargeCard(orderId: string, cents: number) {
  charges[orderId] = (charges[orderId] ?? 0) + 1;
  const receipt = { chargeId: `ch-${orderId}-${charges[orderId]}`, orderId, cents };
  return { content: [{ type: 'text' as const, text: JSON.stringify(receipt) }], structuredContent: receipt };
}
const json = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }] });

const store = memoryIdempotencyStore();
const server = new McpServer({ name: 'shop', version: '1.0.0' }, { capabilities: mcpTxServerCapabilities() });
server.registerTool(
  'get_weather',
  { inputSchema: { city: z.string() }, annotations: { readOnlyHint: true } },
  async ({ city }) => json({ city, sky: 'clear', celsius: 21 }),
);
server.registerTool(
  'charge',
  { inputSchema: { orderId: z.string(), cents: z.number() } },
  txTool(async ({ orderId, cents }) => chargeCard(orderId, cents), { tool: 'charge', store }),
);
server.registerTool(
  'charges',
  { description: 'How many times each order was charged', annotations: { readOnlyHint: true } },
  async () => json(charges),
);
await server.connect(new StdioServerTransport());
