/**
 * One of several worker processes sharing a Redis idempotency store: calls KEYS keyed calls of a
 * `work` tool (whose executions it counts) through the default pipeline, in a shuffled order, and
 * prints JSON: which keys this process executed, how many results were duplicates, how many completed.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { createMcpTx, mcpTxClientCapabilities } from '../../src/index.js';
import { redisIdempotencyStore } from '../../src/redis.js';

const keys = Number(process.env.KEYS ?? 30);
const executed: string[] = [];
const server = new McpServer({ name: 'worker', version: '1.0.0' });
server.registerTool('work', { inputSchema: { key: z.string() } }, async ({ key }) => {
  executed.push(key);
  await new Promise((resolve) => setTimeout(resolve, 5));
  return { content: [{ type: 'text', text: key }] };
});
const client = new Client({ name: 'worker', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
await server.connect(serverSide);
await client.connect(clientSide);

const redis = new Redis(process.env.REDIS_URL as string);
const store = redisIdempotencyStore(redis, { prefix: process.env.PREFIX as string });
const tx = createMcpTx(client, { dedupe: { store } });
const order = Array.from({ length: keys }, (_, index) => `k${index}`).sort(() => Math.random() - 0.5);
const results = await Promise.all(order.map((key) => tx.call('work', { key }, { idempotencyKey: key })));
console.log(
  JSON.stringify({
    executed,
    duplicates: results.filter((result) => result.meta.duplicate).length,
    completed: results.length,
  }),
);
await tx.close();
redis.disconnect();
