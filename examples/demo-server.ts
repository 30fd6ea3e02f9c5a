import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { mcpTxClientCapabilities, mcpTxServerCapabilities } from '../src/index.js';

/** A small shop: what the examples call. Counts its side effects so the examples can show them. */
export interface DemoShop {
  readonly server: McpServer;
  readonly ordersCreated: () => number;
}

/** A real MCP server advertising MCP-Tx, with a read-only tool, a tool with a side effect and a flaky one. */
export function createDemoShop(): DemoShop {
  const server = new McpServer(
    { name: 'demo-shop', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  const stock: Record<string, number> = { apple: 12, pear: 3, fig: 0 };
  let orders = 0;
  let inventoryCalls = 0;

  server.registerTool(
    'get_stock',
    {
      description: 'How many of an item are in stock',
      inputSchema: { item: z.string() },
      annotations: { readOnlyHint: true },
    },
    async ({ item }) => ({
      content: [{ type: 'text', text: JSON.stringify({ item, count: stock[item] ?? 0 }) }],
    }),
  );
  server.registerTool(
    'create_order',
    {
      description: 'Creates an order (a side effect)',
      inputSchema: { item: z.string(), quantity: z.number().int().positive() },
      outputSchema: { orderId: z.string(), item: z.string(), quantity: z.number() },
    },
    async ({ item, quantity }) => {
      orders += 1;
      const order = { orderId: `ord-${orders}`, item, quantity };
      return { content: [{ type: 'text', text: JSON.stringify(order) }], structuredContent: order };
    },
  );
  server.registerTool(
    'sync_inventory',
    { description: 'Fails with TEMPORARY_FAILURE every other call', inputSchema: {} },
    async () => {
      inventoryCalls += 1;
      if (inventoryCalls % 2 === 1) throw new Error('TEMPORARY_FAILURE: warehouse API busy');
      return { content: [{ type: 'text', text: JSON.stringify({ synced: Object.keys(stock).length }) }] };
    },
  );
  return { server, ordersCreated: () => orders };
}

/** Connects a new SDK client advertising MCP-Tx to `server` in this process. */
export async function connectInProcess(server: McpServer): Promise<Client> {
  const client = new Client(
    { name: 'mcp-tx-example', version: '1.0.0' },
    { capabilities: mcpTxClientCapabilities() },
  );
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  await client.connect(clientTransport);
  return client;
}
