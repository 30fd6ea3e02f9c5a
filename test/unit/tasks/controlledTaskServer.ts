import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  InMemoryTaskMessageQueue,
  InMemoryTaskStore,
} from '@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ClientCapabilities, JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createMcpTx, type McpTx, mcpTxClientCapabilities, type TxConfig } from '../../../src/index.js';
import { TASK_CAPABILITIES } from '../../support/taskServer.js';

/** A real McpServer whose task tool `job` only creates its task: the test moves it along through `taskStore`. */
export interface ControlledTaskServer {
  readonly server: McpServer;
  readonly client: Client;
  readonly tx: McpTx;
  /** The SDK's own in-memory store the server answers `tasks/*` from. */
  readonly taskStore: InMemoryTaskStore;
  /** The ids of the tasks `job` created, in order. */
  readonly created: string[];
  /** The methods of every JSON-RPC request the server received, in order. */
  readonly methods: string[];
  close(): Promise<void>;
}

/**
 * Connects an McpTx (on a real SDK Client over InMemoryTransport, with `config`) to a real McpServer
 * with tasks (an `InMemoryTaskStore` and an `InMemoryTaskMessageQueue`, so that the server can send
 * requests related to a task) and one task tool `job`, whose tasks say `pollIntervalMs`.
 */
export async function connectControlled(
  options: { config?: TxConfig; pollIntervalMs?: number; capabilities?: ClientCapabilities } = {},
): Promise<ControlledTaskServer> {
  const taskStore = new InMemoryTaskStore();
  const server = new McpServer(
    { name: 'controlled-task-server', version: '1.0.0' },
    { capabilities: TASK_CAPABILITIES, taskStore, taskMessageQueue: new InMemoryTaskMessageQueue() },
  );
  const created: string[] = [];
  server.experimental.tasks.registerToolTask(
    'job',
    { execution: { taskSupport: 'optional' } },
    {
      createTask: async (extra) => {
        const task = await extra.taskStore.createTask({
          ttl: 600_000,
          pollInterval: options.pollIntervalMs ?? 1_000,
        });
        created.push(task.taskId);
        return { task };
      },
      getTask: async (extra) => extra.taskStore.getTask(extra.taskId),
      getTaskResult: async (extra) => extra.taskStore.getTaskResult(extra.taskId) as never,
    },
  );
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const methods: string[] = [];
  await server.connect(serverSide);
  const deliver = serverSide.onmessage;
  serverSide.onmessage = (message: JSONRPCMessage, extra) => {
    if ('method' in message && 'id' in message) methods.push(message.method);
    deliver?.(message, extra);
  };
  const client = new Client(
    { name: 'test', version: '1.0.0' },
    { capabilities: mcpTxClientCapabilities(options.capabilities) },
  );
  await client.connect(clientSide);
  const tx = createMcpTx(client, { retry: false, ...options.config });
  const close = async () => {
    await tx.close({ timeoutMs: 0 });
    await server.close();
    taskStore.cleanup();
  };
  return { server, client, tx, taskStore, created, methods, close };
}

/** A tool result whose text is `data` as JSON (what `call$` reads back as `data`). */
export function jsonResult(data: unknown) {
  return { content: [{ type: 'text' as const, text: JSON.stringify(data) }] };
}
