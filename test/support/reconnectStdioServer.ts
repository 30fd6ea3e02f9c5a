/**
 * A stdio MCP server that exits by itself every `EXIT_EVERY` tool calls (the call that hits the
 * count, and every call in flight then, get no answer), for the reconnect tests: the client has to
 * start a new one. Its effects are counted in Redis (`REDIS_URL`, keys under `PREFIX`), so that they
 * outlive each process:
 *
 * - `charge` (txTool on the Redis store): its effect, `HINCRBY <PREFIX>charges <id> 1`, is
 *   committed with the idempotency key's completion — once per key, however often the server dies;
 * - `mutate` (`destructiveHint`, no txTool): `HINCRBY <PREFIX>mutations <id> 1` at once;
 * - `lookup` (`readOnlyHint`): changes nothing (`HINCRBY <PREFIX>lookups` only to be observed).
 *
 * Each answers after `WORK_MS` (default 2). It exits when its stdin ends (the client closed).
 */
import { setTimeout as wait } from 'node:timers/promises';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { mcpTxServerCapabilities } from '../../src/core/wire.js';
import { redisIdempotencyStore } from '../../src/redis.js';
import { withEffect } from '../../src/server/effect.js';
import { txTool } from '../../src/server/txTool.js';

const prefix = process.env.PREFIX as string;
const exitEvery = Number(process.env.EXIT_EVERY ?? Infinity);
const workMs = Number(process.env.WORK_MS ?? 2);
const redis = new Redis(process.env.REDIS_URL as string);
const store = redisIdempotencyStore(redis, { prefix: `${prefix}idem:` });

let calls = 0;
/** Counts a call; the one that reaches `EXIT_EVERY` ends the process before it does anything. */
function arrived(): void {
  calls += 1;
  if (calls >= exitEvery) process.exit(0);
}
const answer = (id: string) => ({
  content: [{ type: 'text' as const, text: JSON.stringify({ id, pid: process.pid }) }],
});

const server = new McpServer(
  { name: 'crashing', version: '1.0.0' },
  { capabilities: mcpTxServerCapabilities() },
);
server.registerTool(
  'charge',
  { inputSchema: { id: z.string() } },
  txTool(
    async ({ id }: { id: string }) => {
      arrived();
      await wait(workMs);
      return withEffect(answer(id), [['HINCRBY', `${prefix}charges`, id, 1]]);
    },
    { tool: 'charge', store, inProgressTtlMs: 500, inProgress: { waitMs: 10_000, pollMs: 10 } },
  ),
);
/** A tool that counts each call in the hash `<PREFIX><hash>` at once, then answers after `WORK_MS`. */
function countingTool(name: string, hash: string, annotations: ToolAnnotations): void {
  server.registerTool(name, { inputSchema: { id: z.string() }, annotations }, async ({ id }) => {
    arrived();
    await redis.hincrby(`${prefix}${hash}`, id, 1);
    await wait(workMs);
    return answer(id);
  });
}
countingTool('mutate', 'mutations', { destructiveHint: true });
countingTool('lookup', 'lookups', { readOnlyHint: true });
process.stdin.on('end', () => process.exit(0));
await server.connect(new StdioServerTransport());
