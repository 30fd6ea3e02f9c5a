import { randomBytes } from 'node:crypto';
import type {
  CreateTaskOptions,
  TaskStore,
} from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import type { Request, RequestId, Result, Task } from '@modelcontextprotocol/sdk/types.js';
import type { Redis } from 'ioredis';
import * as z from 'zod';
import { PositiveMsSchema, parseOrThrow, TimeoutMsSchema } from '../config/validators.js';
import { validationError } from '../core/errors.js';
import { withinDeadline } from '../core/storeDeadline.js';
import { CREATE, GET, RENEW, RESULT, UPDATE } from './redisTaskScripts.js';

const RedisTaskStoreOptionsSchema = z.strictObject({
  prefix: z.string().min(1, 'must not be empty').default('mcp-tx:task:'),
  maxTtlMs: PositiveMsSchema.default(86_400_000),
  leaseMs: PositiveMsSchema.default(30_000),
  pageSize: z.number().int().positive('must be greater than 0').max(1_000).default(50),
  sessionScoped: z.boolean().default(true),
  commandTimeoutMs: TimeoutMsSchema.default(2_000),
});

/**
 * Options of {@link redisTaskStore}, all optional:
 *
 * - `prefix` (`'mcp-tx:task:'`): put before every key; replicas sharing it share the tasks.
 * - `maxTtlMs` (86 400 000): the longest a task and its result are kept; a task asked with a
 *   longer `ttl`, or none (`null`, unlimited), gets this one (the spec lets the receiver lower it;
 *   the `ttl` the task reports is the one applied). The TTL restarts when the task ends.
 * - `leaseMs` (30 000): how long a running task lives without its worker: the process that created
 *   it renews its lease every `leaseMs / 3` until it ends. A task whose lease ran out (the process
 *   died) is marked `failed` ("worker died") the next time any replica reads it: never re-run.
 * - `pageSize` (50): tasks per `tasks/list` page.
 * - `sessionScoped` (`true`): a task created in a session (stateful Streamable HTTP) is found only
 *   by that session, as the `TaskStore` interface asks; a task created without one (stdio,
 *   stateless HTTP) by anyone. `false` lets any session find any task by id (replicas behind a load
 *   balancer with sessions, or a client that resumes in a new session).
 * - `commandTimeoutMs` (2 000): how long any one Redis operation may take before it fails with
 *   `MCP_TX_STORE_UNAVAILABLE`.
 *
 * @example
 * const taskStore = redisTaskStore(redis, { prefix: 'build:task:', leaseMs: 10_000 });
 */
export type RedisTaskStoreOptions = z.input<typeof RedisTaskStoreOptionsSchema>;
type Settings = z.output<typeof RedisTaskStoreOptionsSchema>;

/** The store's own Redis commands (defined on the client once). */
interface TaskCommands {
  mcpTxTaskCreate(task: string, index: string, ...args: string[]): Promise<number>;
  mcpTxTaskGet(task: string, ...args: string[]): Promise<[string, string, string, string] | null>;
  mcpTxTaskUpdate(task: string, ...args: string[]): Promise<string>;
  mcpTxTaskResult(task: string, session: string): Promise<string | null>;
  mcpTxTaskRenew(task: string, leaseMs: string): Promise<number>;
}

/**
 * A `TaskStore` (the SDK's experimental tasks) on Redis: tasks and their results survive a server
 * restart and are seen by every replica on the Redis (created on one, polled and fetched on
 * another), each op atomic (a Lua script on Redis's clock) and bounded by `commandTimeoutMs`. See
 * {@link RedisTaskStoreOptions} for TTLs, leases (a task whose worker died is marked failed) and
 * session scoping. `close()` stops renewing leases (the tasks of this process then fail when they
 * run out).
 *
 * @example
 * const taskStore = redisTaskStore(new Redis(process.env.REDIS_URL));
 * const server = new McpServer(info, { capabilities: { tasks: { requests: { tools: { call: {} } }, list: {}, cancel: {} } }, taskStore });
 */
export function redisTaskStore(redis: Redis, options: RedisTaskStoreOptions = {}): RedisTaskStore {
  if (typeof (redis as Partial<Redis> | null)?.defineCommand !== 'function') {
    throw validationError('redis', 'must be an ioredis client');
  }
  return new RedisTaskStore(redis, parseOrThrow(RedisTaskStoreOptionsSchema, options, 'options'));
}

const DIED = 'The worker running this task stopped (its lease expired): the task was not finished';

/**
 * The {@link redisTaskStore}.
 *
 * @example
 * const store: RedisTaskStore = redisTaskStore(redis);
 * await store.close();
 */
export class RedisTaskStore implements TaskStore {
  private readonly commands: TaskCommands;
  private readonly leases = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly redis: Redis,
    private readonly settings: Settings,
  ) {
    if (!('mcpTxTaskGet' in redis)) {
      redis.defineCommand('mcpTxTaskCreate', { numberOfKeys: 2, lua: CREATE });
      redis.defineCommand('mcpTxTaskGet', { numberOfKeys: 1, lua: GET });
      redis.defineCommand('mcpTxTaskUpdate', { numberOfKeys: 1, lua: UPDATE });
      redis.defineCommand('mcpTxTaskResult', { numberOfKeys: 1, lua: RESULT });
      redis.defineCommand('mcpTxTaskRenew', { numberOfKeys: 1, lua: RENEW });
    }
    this.commands = redis as unknown as TaskCommands;
  }

  /** Creates a `working` task, kept `ttl` (at most `maxTtlMs`), leased to this process while it runs. */
  async createTask(
    params: CreateTaskOptions,
    _requestId: RequestId,
    _request: Request,
    sessionId?: string,
  ): Promise<Task> {
    const taskId = randomBytes(16).toString('hex');
    const ttl = Math.min(params.ttl ?? this.settings.maxTtlMs, this.settings.maxTtlMs);
    const createdMs = Date.now();
    const createdAt = new Date(createdMs).toISOString();
    const task: Task = { taskId, status: 'working', ttl, createdAt, lastUpdatedAt: createdAt };
    if (params.pollInterval !== undefined) task.pollInterval = params.pollInterval;
    const member = `${String(createdMs).padStart(15, '0')}:${taskId}`;
    const args = [
      JSON.stringify(task),
      this.session(sessionId),
      String(this.settings.leaseMs),
      String(ttl),
      member,
    ];
    await this.bounded(this.commands.mcpTxTaskCreate(this.key(taskId), this.indexKey(), ...args));
    this.keepLease(taskId);
    return task;
  }

  async getTask(taskId: string, sessionId?: string): Promise<Task | null> {
    const found = await this.bounded(
      this.commands.mcpTxTaskGet(this.key(taskId), this.session(sessionId), DIED),
    );
    if (found === null) return null;
    const [json, status, message, updated] = found;
    const task = { ...(JSON.parse(json) as Task), status: status as Task['status'] };
    if (message !== '') task.statusMessage = message;
    if (updated !== '') task.lastUpdatedAt = new Date(Number(updated)).toISOString();
    return task;
  }

  async storeTaskResult(
    taskId: string,
    status: 'completed' | 'failed',
    result: Result,
    sessionId?: string,
  ): Promise<void> {
    await this.update(taskId, status, undefined, sessionId, JSON.stringify(result));
  }

  async getTaskResult(taskId: string, sessionId?: string): Promise<Result> {
    const stored = await this.bounded(
      this.commands.mcpTxTaskResult(this.key(taskId), this.session(sessionId)),
    );
    if (stored === 'missing') throw new Error(`Task with ID ${taskId} not found`);
    if (stored === null) throw new Error(`Task ${taskId} has no result stored`);
    return JSON.parse(stored) as Result;
  }

  async updateTaskStatus(
    taskId: string,
    status: Task['status'],
    statusMessage?: string,
    sessionId?: string,
  ): Promise<void> {
    await this.update(taskId, status, statusMessage, sessionId, '');
  }

  /** One page of the tasks this session may see, oldest first; the cursor is opaque. */
  async listTasks(cursor?: string, sessionId?: string): Promise<{ tasks: Task[]; nextCursor?: string }> {
    const { pageSize } = this.settings;
    const members = await this.bounded(
      this.redis.zrangebylex(
        this.indexKey(),
        cursor === undefined ? '-' : `(${cursor}`,
        '+',
        'LIMIT',
        0,
        pageSize,
      ),
    );
    const tasks: Task[] = [];
    for (const member of members) {
      const taskId = member.slice(member.indexOf(':') + 1);
      const task = await this.getTask(taskId, sessionId);
      if (task !== null) tasks.push(task);
      else if ((await this.bounded(this.redis.exists(this.key(taskId)))) === 0)
        await this.bounded(this.redis.zrem(this.indexKey(), member)); // expired: out of the index
    }
    const last = members.at(-1);
    return members.length === pageSize && last !== undefined ? { tasks, nextCursor: last } : { tasks };
  }

  /** Stops renewing the leases of this process's tasks. */
  async close(): Promise<void> {
    for (const timer of this.leases.values()) clearInterval(timer);
    this.leases.clear();
  }

  private async update(
    taskId: string,
    status: Task['status'],
    message: string | undefined,
    sessionId: string | undefined,
    result: string,
  ): Promise<void> {
    const args = [this.session(sessionId), status, message ?? '', result];
    const outcome = await this.bounded(this.commands.mcpTxTaskUpdate(this.key(taskId), ...args));
    if (outcome === 'missing') throw new Error(`Task with ID ${taskId} not found`);
    if (outcome.startsWith('terminal:'))
      throw new Error(
        `Cannot update task ${taskId} from terminal status '${outcome.slice(9)}' to '${status}'`,
      );
    if (status === 'completed' || status === 'failed' || status === 'cancelled') this.dropLease(taskId);
  }

  /** Renews the task's lease every `leaseMs / 3` while it runs (a timer that does not keep the process alive). */
  private keepLease(taskId: string): void {
    const timer = setInterval(
      () => {
        this.bounded(this.commands.mcpTxTaskRenew(this.key(taskId), String(this.settings.leaseMs))).then(
          (running) => running === 0 && this.dropLease(taskId),
          () => undefined, // Redis down: the next renewal tries again, the lease decides
        );
      },
      Math.max(1, Math.floor(this.settings.leaseMs / 3)),
    );
    timer.unref();
    this.leases.set(taskId, timer);
  }

  private dropLease(taskId: string): void {
    clearInterval(this.leases.get(taskId));
    this.leases.delete(taskId);
  }

  private session(sessionId: string | undefined): string {
    return this.settings.sessionScoped && sessionId !== undefined ? sessionId : '';
  }

  private key(taskId: string): string {
    return `${this.settings.prefix}${taskId}`;
  }

  private indexKey(): string {
    return `${this.settings.prefix}index`;
  }

  private bounded<T>(operation: Promise<T>): Promise<T> {
    return withinDeadline(operation, this.settings.commandTimeoutMs, 'Task store');
  }
}
