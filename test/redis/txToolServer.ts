/**
 * A txTool server on a shared Redis store, run over stdio by the crash test. `credit` notes each
 * execution of its handler at once (`<prefix>runs`), waits `workMs`, then answers withEffect: the
 * credit (`<prefix>credits`) is committed with the key's completion. Its in-progress records
 * expire after 300 ms, so a key held by a killed process frees soon after the kill.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { mcpTxServerCapabilities, txTool, withEffect } from '../../src/index.js';
import { redisIdempotencyStore } from '../../src/redis.js';

const prefix = process.env.PREFIX as string;
const redis = new Redis(process.env.REDIS_URL as string);
const store = redisIdempotencyStore(redis, { prefix: `${prefix}idem:` });
const server = new McpServer(
  { name: 'credit', version: '1.0.0' },
  { capabilities: mcpTxServerCapabilities() },
);
server.registerTool(
  'credit',
  { inputSchema: { account: z.string(), cents: z.number().int(), workMs: z.number() } },
  txTool(
    async ({ account, cents, workMs }) => {
      await redis.hincrby(`${prefix}runs`, account, 1);
      await new Promise((resolve) => setTimeout(resolve, workMs));
      return withEffect({ content: [{ type: 'text', text: `credited ${account}` }] }, [
        ['HINCRBY', `${prefix}credits`, account, cents],
      ]);
    },
    { tool: 'credit', store, inProgressTtlMs: 300, inProgress: { waitMs: 10_000, pollMs: 20 } },
  ),
);
await server.connect(new StdioServerTransport());
