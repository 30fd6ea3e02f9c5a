import type { TaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { type IdempotencyStore, mcpTxServerCapabilities } from '../../src/index.js';
import { taskTool } from '../../src/tasks/taskTool.js';

/** What the task tools did: runs per key, and handlers whose signal aborted (a cancelled task). */
export interface TaskServerStats {
  readonly runs: Record<string, number>;
  aborted: number;
}

/** The capabilities of a server that runs `tools/call` as tasks, lists and cancels them. */
export const TASK_CAPABILITIES = { tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } };

/**
 * A real McpServer with task tools: `build` (`{ key, ms }`: counts a run of `key` at once, answers
 * `{ built: key, run }` after `ms`; `fail: true` throws), and a plain `echo`. Without a `taskStore`
 * the server has no task support at all (and `build` is a plain tool).
 */
export function createTaskServer(options: {
  taskStore?: TaskStore;
  store?: IdempotencyStore;
  stats?: TaskServerStats;
  pollIntervalMs?: number;
  /** Counts a run of `key` and answers its number (default: in `stats.runs`; a shared counter across processes). */
  countRun?: (key: string) => Promise<number>;
}): { server: McpServer; stats: TaskServerStats } {
  const stats = options.stats ?? { runs: {}, aborted: 0 };
  const { taskStore } = options;
  const server = new McpServer(
    { name: 'task-server', version: '1.0.0' },
    taskStore === undefined
      ? { capabilities: mcpTxServerCapabilities() }
      : { capabilities: mcpTxServerCapabilities(TASK_CAPABILITIES), taskStore },
  );
  const inputSchema = { key: z.string(), ms: z.number(), fail: z.boolean().optional() };
  const build = async (args: { key: string; ms: number; fail?: boolean }, signal?: AbortSignal) => {
    const run = options.countRun ? await options.countRun(args.key) : (stats.runs[args.key] ?? 0) + 1;
    stats.runs[args.key] = run;
    await sleep(args.ms, signal);
    if (signal?.aborted) stats.aborted += 1;
    if (args.fail) throw new Error(`build ${args.key} broke`);
    return { content: [{ type: 'text' as const, text: JSON.stringify({ built: args.key, run }) }] };
  };
  if (taskStore === undefined) {
    server.registerTool('build', { inputSchema }, (args) => build(args));
  } else {
    server.experimental.tasks.registerToolTask(
      'build',
      { inputSchema, execution: { taskSupport: 'optional' } },
      taskTool<{ key: string; ms: number; fail?: boolean }>((args, { signal }) => build(args, signal), {
        tool: 'build',
        store: options.store,
        pollIntervalMs: options.pollIntervalMs ?? 20,
        cancelCheckMs: 20,
      }),
    );
  }
  server.registerTool('echo', { inputSchema: { value: z.string() } }, async ({ value }) => ({
    content: [{ type: 'text', text: JSON.stringify({ value }) }],
  }));
  return { server, stats };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
