/**
 * One of several worker processes sharing a RedisCircuitBreaker: each calls its own `work` tool
 * (InMemory, real SDK) through `tx.call` with the shared breaker and no retry. Driven over stdin,
 * one JSON command per line: `{ "id", "fail"?, "ms"? }` → answers `{ "id", "status", "code"? }`;
 * every breaker transition it sees is printed as `{ "state" }`.
 */
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { createMcpTx, isTxError } from '../../src/index.js';
import { RedisCircuitBreaker } from '../../src/redis.js';

const server = new McpServer({ name: 'worker', version: '1.0.0' });
server.registerTool('work', { inputSchema: { fail: z.boolean(), ms: z.number() } }, async ({ fail, ms }) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  if (fail) return { content: [{ type: 'text', text: 'TEMPORARY_FAILURE: backend down' }], isError: true };
  return { content: [{ type: 'text', text: 'ok' }] };
});
const client = new Client({ name: 'worker', version: '1.0.0' });
const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
await server.connect(serverSide);
await client.connect(clientSide);

const redis = new Redis(process.env.REDIS_URL as string);
const breaker = new RedisCircuitBreaker(redis, {
  key: process.env.BREAKER_KEY as string,
  failureThreshold: 3,
  recoveryTimeoutMs: Number(process.env.RECOVERY_MS),
});
const tx = createMcpTx(client, { breaker, retry: false });
const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const watching = breaker.state$.subscribe((state) => print({ state }));

for await (const line of createInterface({ input: process.stdin })) {
  const { id, fail = false, ms = 0 } = JSON.parse(line) as { id: number; fail?: boolean; ms?: number };
  tx.call('work', { fail, ms }).then(
    (result) => print({ id, status: result.meta.status }),
    (error: unknown) => print({ id, status: 'failed', code: isTxError(error) ? error.code : String(error) }),
  );
}
watching.unsubscribe();
await tx.close();
redis.disconnect();
