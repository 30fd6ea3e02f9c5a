/**
 * What running a tool as an MCP task costs against a plain `call$`: requests sent and latency per
 * call, for a tool of 0 ms and of 2 s (the server's `pollInterval` 100 ms; real SDK Client and
 * McpServer over InMemoryTransport, the SDK's in-memory TaskStore); then the Redis task store's
 * throughput (create, get, store the result, get it: four ops a task, 32 tasks in flight).
 * Needs Redis at REDIS_URL (default 127.0.0.1:6379) for the last part. Run: `npm run bench -- tasks`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Redis } from 'ioredis';
import { createMcpTx, type McpTx, mcpTxClientCapabilities, mcpTxServerCapabilities, taskTool } from 'mcp-tx';
import { redisTaskStore } from 'mcp-tx/redis';
import { lastValueFrom } from 'rxjs';
import { z } from 'zod';
import { machineLine, median, writeResults } from './harness.js';

const POLL_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const work = async ({ ms }: { ms: number }) => {
  await sleep(ms);
  return { content: [{ type: 'text' as const, text: '{"done":true}' }] };
};

/** An McpTx on a server with `work` (a task tool) and `work_plain`; `sent()` counts the client's requests. */
async function connect(): Promise<{ tx: McpTx; sent: () => number; close: () => Promise<void> }> {
  const taskStore = new InMemoryTaskStore();
  const server = new McpServer(
    { name: 'bench', version: '1.0.0' },
    {
      capabilities: mcpTxServerCapabilities({ tasks: { requests: { tools: { call: {} } } } }),
      taskStore,
    },
  );
  const inputSchema = { ms: z.number() };
  server.experimental.tasks.registerToolTask(
    'work',
    { inputSchema, execution: { taskSupport: 'optional' } },
    taskTool<{ ms: number }>(work, { tool: 'work', pollIntervalMs: POLL_MS, cancelCheckMs: 60_000 }),
  );
  server.registerTool('work_plain', { inputSchema }, work);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  let requests = 0;
  const send = clientSide.send.bind(clientSide);
  clientSide.send = (message, options) => {
    if ('method' in message && 'id' in message) requests += 1;
    return send(message, options);
  };
  const client = new Client({ name: 'bench', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  await client.connect(clientSide);
  const tx = createMcpTx(client, { dedupe: false, retry: false });
  await tx.call('work_plain', { ms: 0 }); // lists the tools once, outside the measure
  return {
    tx,
    sent: () => requests,
    close: async () => {
      await tx.close();
      await server.close();
      taskStore.cleanup();
    },
  };
}

/** Median latency (ms) and requests per call of `runs` calls, `parallel` at a time. */
async function measure(
  run: () => Promise<unknown>,
  sent: () => number,
  runs: number,
  parallel: number,
): Promise<{ ms: number; requests: number }> {
  const latencies: number[] = [];
  const before = sent();
  for (let done = 0; done < runs; done += parallel) {
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        const started = performance.now();
        await run();
        latencies.push(performance.now() - started);
      }),
    );
  }
  return { ms: median(latencies), requests: (sent() - before) / runs };
}

const { tx, sent, close } = await connect();
const rows: string[] = [];
for (const [ms, runs, parallel] of [
  [0, 40, 1],
  [2_000, 4, 4],
] as const) {
  const plain = await measure(() => tx.call('work_plain', { ms }), sent, runs, parallel);
  const task = await measure(() => lastValueFrom(tx.task$('work', { ms })), sent, runs, parallel);
  rows.push(
    `| ${ms} | ${plain.ms.toFixed(1)} | ${task.ms.toFixed(1)} | +${(task.ms - plain.ms).toFixed(1)} | ${plain.requests} | ${task.requests} |`,
  );
}
await close();

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
const prefix = `mcp-tx-bench:${Date.now()}:task:`;
let storeLine: string;
if (
  await redis.connect().then(
    () => true,
    () => false,
  )
) {
  const store = redisTaskStore(redis, { prefix });
  const TASKS = 2_000;
  const request = { method: 'tools/call', params: { name: 'work' } };
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < TASKS) {
        next += 1;
        const { taskId } = await store.createTask({ ttl: 60_000 }, next, request);
        await store.getTask(taskId);
        await store.storeTaskResult(taskId, 'completed', { content: [] });
        await store.getTaskResult(taskId);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1_000;
  await store.close();
  const keys = await redis.keys(`${prefix}*`);
  for (let index = 0; index < keys.length; index += 1_000)
    await redis.del(...keys.slice(index, index + 1_000));
  storeLine = `Redis task store: ${Math.round((TASKS * 4) / seconds)} ops/s (${Math.round(TASKS / seconds)} tasks/s: create, get, store result, get result; 32 in flight, one connection).`;
} else {
  storeLine = `Redis task store: skipped, no Redis at ${url}.`;
}
redis.disconnect();

writeResults(
  'tasks',
  [
    `A tool as a task (\`tx.task$\`) vs a plain \`tx.call\`, server \`pollInterval\` ${POLL_MS} ms, real SDK over InMemoryTransport; median of 40 sequential calls (0 ms tool) and of 4 concurrent ones (2 s tool); ${machineLine()}.`,
    '',
    '| tool ms | call ms | task ms | added | requests per call | requests per task |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `A task sends its creation, one \`tasks/get\` per \`pollInterval\` while it runs, and one \`tasks/result\`; it ends at most one \`pollInterval\` after the tool does. ${storeLine}`,
  ].join('\n'),
);
