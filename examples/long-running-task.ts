import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { TaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  createMcpTx,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  taskTool,
} from 'mcp-tx';
import { JsonlEventStore } from 'mcp-tx/node';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { z } from 'zod';

const creations = memoryIdempotencyStore();

/** A server whose `build` tool runs as an MCP task: the creation answers at once, the work goes on. */
function buildServer(taskStore: TaskStore): McpServer {
  const server = new McpServer(
    { name: 'builds', version: '1.0.0' },
    {
      capabilities: mcpTxServerCapabilities({
        tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
      }),
      taskStore, // redisTaskStore(redis) from 'mcp-tx/redis' to survive restarts and serve every replica
    },
  );
  server.experimental.tasks.registerToolTask(
    'build',
    { inputSchema: { ref: z.string() }, execution: { taskSupport: 'optional' } },
    taskTool<{ ref: string }>(
      async ({ ref }, { signal }) => {
        await new Promise((resolve) => setTimeout(resolve, 300)); // the long part (stop early on `signal`)
        return {
          content: [
            { type: 'text', text: JSON.stringify({ ref, artifact: `${ref}.tgz`, aborted: signal.aborted }) },
          ],
        };
      },
      { tool: 'build', store: creations, pollIntervalMs: 100 },
    ),
  );
  return server;
}

async function connect(taskStore: TaskStore, events: JsonlEventStore) {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await buildServer(taskStore).connect(serverSide);
  const client = new Client({ name: 'ci', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  await client.connect(clientSide);
  return createMcpTx(client, { events });
}

/** A client creates a build task and dies; a new client finds it in the log and resumes it. */
export async function main(log: (line: string) => void = console.log) {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-tx-example-'));
  const events = new JsonlEventStore(join(dir, 'events.jsonl'));
  const taskStore = new InMemoryTaskStore();

  const first = await connect(taskStore, events);
  const created = await firstValueFrom(
    first.task$('build', { ref: 'v1.2.0' }, { idempotencyKey: 'build-v1.2.0' }),
  );
  if (created.type === 'created') log(`created task ${created.taskId}`);
  await first.close({ timeoutMs: 0 }); // the client goes away: the task does not

  const second = await connect(taskStore, events);
  const [pending] = await second.pendingTasks();
  if (pending === undefined) throw new Error('the log should hold the created task');
  log(`resuming ${pending.taskId} (${pending.tool})`);
  const last = await lastValueFrom(second.resumeTask$(pending.taskId, { tool: pending.tool }));
  if (last.type === 'result') log(`result ${JSON.stringify(last.result.data)}`);
  await second.close();
  await events.close();
  taskStore.cleanup();
  await rm(dir, { recursive: true, force: true });
  return { taskId: pending.taskId, data: last.type === 'result' ? last.result.data : undefined };
}
