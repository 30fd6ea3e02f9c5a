import type { ToolTaskHandler } from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import type { ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { RequestTaskStore } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, Task } from '@modelcontextprotocol/sdk/types.js';
import { asyncScheduler, firstValueFrom, type SchedulerLike } from 'rxjs';
import * as z from 'zod';
import { PositiveMsSchema, parseOrThrow, SchedulerSchema } from '../config/validators.js';
import { TxErrorCode, validationError } from '../core/errors.js';
import { sanitizeMessage } from '../core/sanitize.js';
import { MCP_TX_KEY, type WireResponseMeta } from '../core/wire.js';
import { fingerprint, scopedKey } from '../idempotency/fingerprint.js';
import {
  beginKey,
  conflictMessage,
  InProgressOptionsSchema,
  inProgressMessage,
} from '../idempotency/keyedExecution.js';
import type { IdempotencyStore } from '../idempotency/store.js';
import { type TxToolRequest, txRequestOf } from '../server/txRequest.js';
import { runInBackground, type TaskWork } from './taskWorker.js';

const TaskToolOptionsSchema = z.strictObject({
  tool: z.string().min(1, 'must not be empty'),
  store: z
    .custom<IdempotencyStore>(
      (value) => typeof (value as IdempotencyStore | null)?.begin === 'function',
      'must be an IdempotencyStore',
    )
    .optional(),
  ttlMs: PositiveMsSchema.default(3_600_000),
  maxTtlMs: PositiveMsSchema.default(86_400_000),
  pollIntervalMs: PositiveMsSchema.default(1_000),
  cancelCheckMs: PositiveMsSchema.default(1_000),
  ...InProgressOptionsSchema(50),
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link taskTool}:
 *
 * - `tool` (required): the tool's name; creation keys are scoped by it.
 * - `store` (none): the {@link IdempotencyStore} that maps a creation's idempotency key (else its
 *   MCP-Tx `request_id`) to its task id, so that a retried creation gets the same task. Without it
 *   every creation makes a new task.
 * - `ttlMs` (3 600 000): the task's lifetime when the client asks for none; `maxTtlMs`
 *   (86 400 000) caps what a client asks for (the spec lets the receiver lower it).
 * - `pollIntervalMs` (1 000): the `pollInterval` the task tells clients.
 * - `cancelCheckMs` (1 000): how often the worker reads the task's status, to abort the handler's
 *   `signal` once a client cancelled it.
 * - `inProgressTtlMs`, `inProgress`: as {@link txTool}'s, for two creations of one key at once.
 * - `scheduler` (`asyncScheduler`).
 *
 * @example
 * taskTool(handler, { tool: 'build', store: redisIdempotencyStore(redis), pollIntervalMs: 500 });
 */
export type TaskToolOptions = z.input<typeof TaskToolOptionsSchema>;
type Settings = z.output<typeof TaskToolOptionsSchema> & { scheduler: SchedulerLike };

/** What the SDK hands a task tool's `createTask`: of it, `taskTool` reads these. */
interface CreateExtra {
  readonly _meta?: Record<string, unknown>;
  readonly signal?: AbortSignal;
  readonly taskStore: RequestTaskStore;
  readonly taskRequestedTtl?: number;
}

/**
 * What a task handler gets besides the arguments: the task's id, and a `signal` aborted when a
 * client cancels the task (`tasks/cancel`), read every `cancelCheckMs`.
 *
 * @example
 * const handler: TaskHandler<{ n: number }> = async ({ n }, { taskId, signal }) => build(n, { taskId, signal });
 */
export interface TaskHandlerExtra {
  readonly taskId: string;
  readonly signal: AbortSignal;
}

/**
 * A task tool's work: runs in the background after the task is created; its result (an `isError`
 * one, or a throw, makes the task `failed`) is stored as the task's result.
 *
 * @example
 * const handler: TaskHandler<{ month: string }> = async ({ month }) => ({ content: [{ type: 'text', text: await report(month) }] });
 */
export type TaskHandler<Args> = (
  args: Args,
  extra: TaskHandlerExtra,
) => CallToolResult | Promise<CallToolResult>;

/**
 * Makes a long-running tool a durable MCP task (`server.experimental.tasks.registerToolTask`): the
 * creation answers at once with a `working` task, the handler runs in the background in this
 * process, and its result is stored in the server's `TaskStore` (the SDK's in-memory one, or
 * `redisTaskStore` to survive restarts and be seen by every replica). With a `store`, a creation
 * is deduped on its `_meta.mcp_tx.idempotency_key`, else its `request_id` (as {@link txTool}): the
 * same identity while its task exists answers the existing task (whatever its status; the
 * `_meta.mcp_tx.duplicate` of the answer says so) without running anything; other arguments answer
 * `MCP_TX_IDEMPOTENCY_CONFLICT`. A task whose TTL ended no longer holds its key.
 *
 * @example
 * const server = new McpServer(info, { capabilities: { tasks: { requests: { tools: { call: {} } }, cancel: {}, list: {} } }, taskStore });
 * server.experimental.tasks.registerToolTask('build', { inputSchema: { ref: z.string() }, execution: { taskSupport: 'optional' } },
 *   taskTool(async ({ ref }, { signal }) => runBuild(ref, signal), { tool: 'build', store }));
 */
export function taskTool<Args>(
  handler: TaskHandler<Args>,
  options: TaskToolOptions,
): ToolTaskHandler<ZodRawShapeCompat> {
  if (typeof handler !== 'function') throw validationError('handler', 'must be a task handler');
  const parsed = parseOrThrow(TaskToolOptionsSchema, options, 'options');
  const settings: Settings = { ...parsed, scheduler: parsed.scheduler ?? asyncScheduler };
  const createTask = async (args: Args, extra: CreateExtra) => {
    const request = txRequestOf(extra);
    const work: TaskWork = { run: (taskExtra) => handler(args, taskExtra), ...settings };
    const identity = request === undefined ? undefined : identityOf(request, settings.tool);
    if (settings.store === undefined || request === undefined || identity === undefined) {
      return created(await startTask(extra, settings, work), request, false);
    }
    return createKeyed(
      { store: settings.store, key: identity, fingerprint: fingerprint(args) },
      {
        extra,
        settings,
        work,
        request,
      },
    );
  };
  const getTask = async (_args: unknown, extra: { taskId: string; taskStore: RequestTaskStore }) =>
    extra.taskStore.getTask(extra.taskId);
  const getTaskResult = async (_args: unknown, extra: { taskId: string; taskStore: RequestTaskStore }) =>
    (await extra.taskStore.getTaskResult(extra.taskId)) as CallToolResult;
  return { createTask, getTask, getTaskResult } as unknown as ToolTaskHandler<ZodRawShapeCompat>;
}

/** The store key of a creation: its idempotency key, else its request id, scoped by tool (apart from txTool's keys). */
function identityOf(request: TxToolRequest, tool: string): string | undefined {
  if (request.idempotencyKey) return `server-task ${scopedKey(tool, request.idempotencyKey)}`;
  if (request.requestId) return `server-task-request ${scopedKey(tool, request.requestId)}`;
  return undefined;
}

interface Creation {
  readonly extra: CreateExtra;
  readonly settings: Settings;
  readonly work: TaskWork;
  readonly request: TxToolRequest;
}

/** Takes the creation's key: a new one makes the task and keeps its id; a kept one answers its task. */
async function createKeyed(
  callKey: { store: IdempotencyStore; key: string; fingerprint: string },
  creation: Creation,
): Promise<unknown> {
  const { extra, settings, request } = creation;
  const outcome = await firstValueFrom(beginKey(callKey, settings, extra.signal));
  if (outcome.status === 'conflict') {
    const key = request.idempotencyKey ?? request.requestId ?? '';
    return refused(request, TxErrorCode.IdempotencyConflict, conflictMessage(settings.tool, key));
  }
  if (outcome.status === 'in_progress') {
    const key = request.idempotencyKey ?? request.requestId ?? '';
    return refused(request, TxErrorCode.InProgress, inProgressMessage(settings.tool, key));
  }
  if (outcome.status === 'completed') {
    const existing = await existingTask(extra.taskStore, outcome.record);
    if (existing !== undefined) return created(existing, request, true);
  }
  const token = outcome.status === 'new' ? outcome.token : undefined;
  let task: Task;
  try {
    task = await startTask(extra, settings, creation.work);
  } catch (error) {
    if (outcome.status === 'new') await callKey.store.release(callKey.key, token).catch(() => undefined);
    throw error;
  }
  const record = { kind: 'result' as const, result: { content: [] }, data: { taskId: task.taskId } };
  await callKey.store.complete(callKey.key, callKey.fingerprint, record, ttlOf(task, settings));
  return created(task, request, false);
}

/** The task a kept creation record names, if it still exists. */
async function existingTask(
  taskStore: RequestTaskStore,
  record: { readonly kind: string; readonly data?: unknown },
): Promise<Task | undefined> {
  const taskId = (record.data as { taskId?: unknown } | undefined)?.taskId;
  if (record.kind !== 'result' || typeof taskId !== 'string') return undefined;
  try {
    return await taskStore.getTask(taskId);
  } catch {
    return undefined; // not found: its TTL ended
  }
}

/** Creates the task with the client's TTL (capped) and starts the handler in the background. */
async function startTask(extra: CreateExtra, settings: Settings, work: TaskWork): Promise<Task> {
  const requested = extra.taskRequestedTtl ?? settings.ttlMs;
  const ttl = Math.min(requested, settings.maxTtlMs);
  const task = await extra.taskStore.createTask({ ttl, pollInterval: settings.pollIntervalMs });
  runInBackground(extra.taskStore, task.taskId, work);
  return task;
}

/** How long a creation key is kept: the task's own lifetime. */
function ttlOf(task: Task, settings: Settings): number {
  return typeof task.ttl === 'number' && task.ttl > 0 ? task.ttl : settings.maxTtlMs;
}

function wireMeta(request: TxToolRequest | undefined, meta: WireResponseMeta): Record<string, unknown> {
  return request === undefined ? {} : { [MCP_TX_KEY]: { ...meta, attempts: request.retryCount + 1 } };
}

/** The `CreateTaskResult`: the task, and for an MCP-Tx client whether it already existed. */
function created(task: Task, request: TxToolRequest | undefined, duplicate: boolean): unknown {
  const meta = { ack: true, processed: true, duplicate, attempts: 1, final_status: 'completed' as const };
  return { task, _meta: wireMeta(request, meta) };
}

/** A creation refused before any task was made: a tool error, as txTool answers one. */
function refused(request: TxToolRequest, code: string, message: string): CallToolResult {
  const text = sanitizeMessage(message);
  const meta: WireResponseMeta = {
    ack: true,
    processed: false,
    duplicate: false,
    attempts: 1,
    final_status: 'failed',
    error_code: code,
    error_message: text,
  };
  return { content: [{ type: 'text', text }], isError: true, _meta: wireMeta(request, meta) };
}
