import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  type CallToolRequest,
  type CallToolResult,
  CallToolResultSchema,
  CreateTaskResultSchema,
  type Task,
} from '@modelcontextprotocol/sdk/types.js';
import type { AttemptEnvironment } from '../call/call.js';
import { connectedWithin } from './connected.js';

/** Where a creation's result carries the task it made (the synthetic result the creation call emits). */
const CREATED_TASK_KEY = 'mcp-tx/created-task';

/**
 * `env` with a client whose `callTool` creates a task: it sends `tools/call` with the `task`
 * augmentation (and `ttl` when given) and answers a `CreateTaskResult` as a `CallToolResult`
 * holding the task (read back with {@link createdTaskOf}), its `_meta.mcp_tx` kept; a server that
 * ran the tool as a plain call answers its plain result. So a creation is an ordinary attempt
 * (`attemptCall`) and goes through the pipeline's operators like any call: throttle, breaker,
 * retry, dedupe on the creation's idempotency key, record, monitor.
 *
 * @example
 * const creation = attemptCall(taskCreatingEnv(env, 600_000), request);
 */
export function taskCreatingEnv(env: AttemptEnvironment, ttlMs: number | undefined): AttemptEnvironment {
  const base = env.client;
  const callTool = async (params: CallToolRequest['params'], _schema: unknown, options?: RequestOptions) => {
    const task = ttlMs === undefined ? {} : { ttl: ttlMs };
    const answer = await base.request(
      { method: 'tools/call', params },
      CreateTaskResultSchema.or(CallToolResultSchema),
      { ...options, task },
    );
    if ('task' in answer) return asCallResult(answer.task as Task, answer._meta);
    return answer as CallToolResult;
  };
  const client = Object.create(base, { callTool: { value: callTool } }) as Client;
  return { ...env, client };
}

function asCallResult(task: Task, meta: Record<string, unknown> | undefined): CallToolResult {
  return {
    content: [],
    structuredContent: { taskId: task.taskId, status: task.status },
    _meta: { ...meta, [CREATED_TASK_KEY]: task },
  };
}

/**
 * The task a creation made, or undefined when its result is a plain one (the server ran the tool
 * as a plain call).
 *
 * @example
 * const task = createdTaskOf(creation.result);
 * if (task) console.log(task.taskId, task.pollInterval);
 */
export function createdTaskOf(result: CallToolResult): Task | undefined {
  const task = result._meta?.[CREATED_TASK_KEY] as Task | undefined;
  return typeof task?.taskId === 'string' ? task : undefined;
}

/**
 * Whether the connected server runs `tool` as a task: it advertises tasks for `tools/call` and its
 * listing marks the tool `execution.taskSupport` `optional` or `required` (listed once per connection).
 * Waits for the connection mcp-tx keeps first (at most `timeoutMs`).
 *
 * @example
 * if (await runsAsTask(env, 'build', 30_000)) startTask(); else plainCall();
 */
export async function runsAsTask(env: AttemptEnvironment, tool: string, timeoutMs: number): Promise<boolean> {
  await connectedWithin(env, timeoutMs);
  if (env.client.getServerCapabilities()?.tasks?.requests?.tools?.call === undefined) return false;
  await env.toolAnnotations(tool); // makes sure the tools were listed: the SDK client keeps their task support
  // The SDK's own record of the listing (`Client.isToolTask`, not public in 1.32): a client without
  // it sends the augmentation, which a server answers with a plain result for a plain tool.
  const known = (env.client as unknown as { isToolTask?: (name: string) => boolean }).isToolTask;
  return typeof known !== 'function' || known.call(env.client, tool);
}
