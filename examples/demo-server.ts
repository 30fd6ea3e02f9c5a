import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  createMcpTx,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  type TxConfig,
  txTool,
} from 'mcp-tx';
import { z } from 'zod';

/** A small shop: what the examples call. Counts its side effects so the examples can show them. */
export interface DemoShop {
  readonly server: McpServer;
  readonly ordersCreated: () => number;
  /** Side effects per `<tool>:<key>` of the saga, pipeline and batch tools. */
  readonly effects: Record<string, number>;
  /** `search` calls the client cancelled (their handler's signal aborted). */
  readonly cancelledSearches: () => number;
  /** While on, `get_quote` fails with a network-like error (for the circuit breaker example). */
  setOutage(on: boolean): void;
}

/**
 * A real MCP server advertising MCP-Tx with the `dedupe` feature — every tool with a side effect is
 * a `txTool` (once per idempotency key, else per request id) — with read-only tools, tools with a
 * side effect and a flaky one.
 */
export function createDemoShop(): DemoShop {
  const server = new McpServer(
    { name: 'demo-shop', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  const stock: Record<string, number> = { apple: 12, pear: 3, fig: 0 };
  let orders = 0;
  let inventoryCalls = 0;
  let cancelledSearches = 0;
  let outage = false;
  const effects: Record<string, number> = {};
  const store = memoryIdempotencyStore();
  const count = (key: string) => {
    effects[key] = (effects[key] ?? 0) + 1;
    return effects[key];
  };
  const text = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }] });

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
    txTool(
      async ({ item, quantity }: { item: string; quantity: number }) => {
        orders += 1;
        const order = { orderId: `ord-${orders}`, item, quantity };
        return { content: [{ type: 'text', text: JSON.stringify(order) }], structuredContent: order };
      },
      { tool: 'create_order', store },
    ),
  );
  server.registerTool(
    'sync_inventory',
    { description: 'Fails with TEMPORARY_FAILURE every other call', inputSchema: {} },
    txTool(
      async () => {
        inventoryCalls += 1;
        if (inventoryCalls % 2 === 1) throw new Error('TEMPORARY_FAILURE: warehouse API busy');
        return text({ synced: Object.keys(stock).length });
      },
      { tool: 'sync_inventory', store },
    ),
  );
  server.registerTool(
    'search',
    {
      description: 'Searches the catalogue (takes 30 ms)',
      inputSchema: { q: z.string() },
      annotations: { readOnlyHint: true },
    },
    async ({ q }, extra) => {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 30);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (extra.signal.aborted) cancelledSearches += 1;
      return text(Object.keys(stock).filter((item) => item.startsWith(q)));
    },
  );
  server.registerTool(
    'get_quote',
    {
      description: 'A price quote; fails during an outage',
      inputSchema: { item: z.string() },
      annotations: { readOnlyHint: true },
    },
    async ({ item }) => {
      if (outage) throw new Error('NETWORK_ERROR: pricing service unreachable');
      return text({ item, cents: 120 });
    },
  );
  server.registerTool(
    'ping',
    { description: 'Answers at once', inputSchema: { n: z.number() } },
    txTool(
      async ({ n }: { n: number }) => {
        count('ping');
        return text({ n });
      },
      { tool: 'ping', store },
    ),
  );

  // Tools with side effects, exactly-once per idempotency key (txTool): the saga and pipeline steps.
  const effectTool = (tool: string, run: (args: { order: string; cents?: number }) => unknown) =>
    server.registerTool(
      tool,
      { inputSchema: { order: z.string(), cents: z.number().optional() } },
      txTool(
        async (args) => {
          const result = run(args);
          count(`${tool}:${args.order}`);
          return text(result);
        },
        { tool, store },
      ),
    );
  effectTool('reserve_stock', ({ order }) => ({ reservation: `r-${order}` }));
  effectTool('charge_payment', ({ order, cents = 0 }) => {
    if (cents > 100_000) throw new Error(`card declined for order ${order}`);
    return { charge: `c-${order}` };
  });
  effectTool('ship_order', ({ order }) => ({ tracking: `t-${order}` }));
  effectTool('release_stock', ({ order }) => ({ released: order }));
  effectTool('refund_payment', ({ order }) => ({ refunded: order }));
  effectTool('extract_orders', () => [
    { id: 1, cents: 1_200 },
    { id: 2, cents: 800 },
    { id: 3, cents: 4_000 },
  ]);
  effectTool('summarize_orders', ({ order }) => ({ batch: order, orders: 3, totalCents: 6_000 }));
  effectTool('publish_report', ({ order }) => ({ published: `report-${order}` }));

  return {
    server,
    ordersCreated: () => orders,
    effects,
    cancelledSearches: () => cancelledSearches,
    setOutage: (on) => {
      outage = on;
    },
  };
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

/** A demo shop in this process and an McpTx on a client connected to it. */
export async function openShop(config: TxConfig = {}) {
  const shop = createDemoShop();
  const tx = createMcpTx(await connectInProcess(shop.server), config);
  return {
    shop,
    tx,
    async close() {
      await tx.close();
      await shop.server.close();
    },
  };
}
