import { lastValueFrom, reduce } from 'rxjs';
import type { TxRequest } from '../core/types.js';
import type { EventStore, TxEvent } from '../events/eventStore.js';
import type { PendingTask } from './taskOptions.js';

/** The event a created task leaves in the log (`data.taskId`, `data.idempotencyKey`). */
export const TASK_CREATED = 'TaskCreated';
/** The event a task seen to end leaves in the log (`data.taskId`, `data.status`). */
export const TASK_ENDED = 'TaskEnded';

/**
 * Logs a task the client created, so that a restarted client knows to resume it. A log that cannot
 * be written is reported as a process warning: the task exists whatever the log says.
 *
 * @example
 * await logTaskCreated(events, call.request, task.taskId);
 */
export async function logTaskCreated(events: EventStore, request: TxRequest, taskId: string): Promise<void> {
  const data: Record<string, unknown> = { taskId };
  if (request.idempotencyKey !== undefined) data.idempotencyKey = request.idempotencyKey;
  const base = { type: TASK_CREATED, requestId: request.requestId, tool: request.name, data };
  await appendOrWarn(
    events,
    request.transactionId === undefined ? base : { ...base, transactionId: request.transactionId },
  );
}

/**
 * Logs that a task ended (`completed`, `failed`, `cancelled`) as a watcher saw it.
 *
 * @example
 * await logTaskEnded(events, 'build', taskId, 'completed');
 */
export async function logTaskEnded(
  events: EventStore,
  tool: string,
  taskId: string,
  status: string,
): Promise<void> {
  await appendOrWarn(events, { type: TASK_ENDED, tool, data: { taskId, status } });
}

async function appendOrWarn(events: EventStore, event: Omit<TxEvent, 'id' | 'at'>): Promise<void> {
  try {
    await events.append(event);
  } catch (error) {
    process.emitWarning(
      `mcp-tx tasks: could not log ${event.type} ${String(event.data?.taskId)}: ${String(error)}`,
    );
  }
}

/**
 * The tasks created in the log and not logged as ended, oldest first: what a restarted client still
 * waits for.
 *
 * @example
 * const pending = await pendingTasksIn(events);
 */
export function pendingTasksIn(events: EventStore): Promise<PendingTask[]> {
  const pending$ = events.read$({ type: [TASK_CREATED, TASK_ENDED] }).pipe(
    reduce((pending, event) => {
      const taskId = event.data?.taskId;
      if (typeof taskId !== 'string') return pending;
      if (event.type === TASK_ENDED) pending.delete(taskId);
      else pending.set(taskId, pendingOf(event, taskId));
      return pending;
    }, new Map<string, PendingTask>()),
  );
  return lastValueFrom(pending$, { defaultValue: new Map<string, PendingTask>() }).then((pending) => [
    ...pending.values(),
  ]);
}

function pendingOf(event: TxEvent, taskId: string): PendingTask {
  const key = event.data?.idempotencyKey;
  return {
    taskId,
    tool: event.tool ?? '',
    createdAt: event.at,
    ...(event.requestId === undefined ? {} : { requestId: event.requestId }),
    ...(event.transactionId === undefined ? {} : { transactionId: event.transactionId }),
    ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
  };
}
