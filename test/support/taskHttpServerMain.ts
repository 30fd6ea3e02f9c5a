/**
 * A replica of the task server as a process of its own, over stateless Streamable HTTP on `PORT`
 * (0: a spare one): its tasks in a `redisTaskStore` (lease `LEASE_MS`), its creation keys in a
 * `redisIdempotencyStore` and its runs counted (`HINCRBY <PREFIX>runs <key> 1`) in Redis at
 * `REDIS_URL` under `PREFIX`, shared by every replica. Prints `listening <port>` once it listens.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Redis } from 'ioredis';
import { redisIdempotencyStore, redisTaskStore } from '../../src/redis.js';
import { createTaskServer } from './taskServer.js';

const prefix = process.env.PREFIX as string;
const redis = new Redis(process.env.REDIS_URL as string);
const taskStore = redisTaskStore(redis, {
  prefix: `${prefix}task:`,
  leaseMs: Number(process.env.LEASE_MS ?? 30_000),
});
const store = redisIdempotencyStore(redis, { prefix: `${prefix}idem:` });
const countRun = (key: string) => redis.hincrby(`${prefix}runs`, key, 1);

const http = createServer((req, res) => {
  const { server } = createTaskServer({ taskStore, store, countRun, pollIntervalMs: 50 });
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  server
    .connect(transport)
    .then(() => transport.handleRequest(req, res))
    .catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
});
http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(http.address() as AddressInfo).port}\n`);
});
