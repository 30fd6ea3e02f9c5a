import type { Task } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { PositiveMsSchema, parseOrThrow } from '../config/validators.js';
import type { TxMeta, TxResult } from '../core/types.js';

const TaskOnlyOptionsSchema = z.strictObject({
  cancelOnUnsubscribe: z.boolean().default(false),
  ttlMs: PositiveMsSchema.optional(),
  pollIntervalMs: PositiveMsSchema.default(1_000),
  maxPollFailures: z.number().int().min(0, 'must be at least 0').default(5),
  maxPollDelayMs: PositiveMsSchema.default(30_000),
});

/**
 * What a task adds to a call's options (`tx.task$(name, args, options)`, `tx.resumeTask$`), all
 * optional:
 *
 * - `cancelOnUnsubscribe` (`false`): unsubscribing cancels the task on the server (`tasks/cancel`)
 *   instead of only detaching from it.
 * - `ttlMs` (the server's choice): how long the server should keep the task and its result.
 * - `pollIntervalMs` (1 000): the poll interval when the server's task gives none.
 * - `maxPollFailures` (5): polls in a row that may fail (timeout, network, server error) before the
 *   watch fails; each failure doubles the wait, up to `maxPollDelayMs` (30 000).
 *
 * @example
 * tx.task$('build', { ref: 'main' }, { cancelOnUnsubscribe: true, ttlMs: 600_000, maxPollFailures: 10 });
 */
export type TaskOnlyOptions = z.input<typeof TaskOnlyOptionsSchema>;
/** {@link TaskOnlyOptions} with the defaults filled in. */
export type TaskSettings = z.output<typeof TaskOnlyOptionsSchema>;

const TASK_ONLY_KEYS = Object.keys(TaskOnlyOptionsSchema.shape);

/**
 * Splits a task's options into the task's own settings (checked, defaults filled in; a bad one
 * throws `MCP_TX_VALIDATION` naming `options.<field>`) and the rest: the call options of the creation.
 *
 * @example
 * const { task, call } = splitTaskOptions({ cancelOnUnsubscribe: true, idempotencyKey: 'build-42' });
 */
export function splitTaskOptions<O extends object>(
  options: (O & TaskOnlyOptions) | undefined,
): { task: TaskSettings; call: O | undefined } {
  if (options === undefined)
    return { task: parseOrThrow(TaskOnlyOptionsSchema, {}, 'options'), call: undefined };
  const own: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options))
    (TASK_ONLY_KEYS.includes(key) ? own : rest)[key] = value;
  return { task: parseOrThrow(TaskOnlyOptionsSchema, own, 'options'), call: rest as O };
}

/**
 * One event of `tx.task$` / `tx.resumeTask$`: `created` once the server made the task (with the
 * creation call's metadata), `status` whenever a poll sees the status change, and last `result`:
 * the tool's result with the same `data` and `meta` as `call$` gives. A task run as a plain call
 * (no task support) emits only `result`.
 *
 * @example
 * tx.task$('build', { ref: 'main' }).subscribe((event) => {
 *   if (event.type === 'created') console.log('task', event.taskId);
 *   if (event.type === 'status') console.log(event.status, event.statusMessage);
 *   if (event.type === 'result') console.log(event.result.data);
 * });
 */
export type TaskEvent =
  | { readonly type: 'created'; readonly taskId: string; readonly task: Task; readonly meta: TxMeta }
  | {
      readonly type: 'status';
      readonly taskId: string;
      readonly status: Task['status'];
      readonly statusMessage?: string;
      readonly task: Task;
      readonly meta: TxMeta;
    }
  | { readonly type: 'result'; readonly taskId?: string; readonly result: TxResult };

/**
 * A task a client created and has not seen end, from the event log (`tx.pendingTasks()`).
 *
 * @example
 * for (const { taskId, tool } of await tx.pendingTasks()) tx.resumeTask$(taskId, { tool }).subscribe(console.log);
 */
export interface PendingTask {
  readonly taskId: string;
  readonly tool: string;
  readonly requestId?: string;
  readonly transactionId?: string;
  readonly idempotencyKey?: string;
  /** ISO 8601: when the creation was logged. */
  readonly createdAt: string;
}
