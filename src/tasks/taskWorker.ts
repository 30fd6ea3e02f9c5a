import type { RequestTaskStore } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { SchedulerLike } from 'rxjs';

/**
 * What runs a task: its handler (given the task id and a signal aborted when the task is
 * cancelled), how often to look for a cancellation, and the scheduler of those looks.
 *
 * @example
 * const work: TaskWork = { run: ({ signal }) => build(signal), cancelCheckMs: 1_000, scheduler: asyncScheduler };
 */
export interface TaskWork {
  readonly run: (extra: { taskId: string; signal: AbortSignal }) => CallToolResult | Promise<CallToolResult>;
  readonly cancelCheckMs: number;
  readonly scheduler: SchedulerLike;
}

/**
 * Runs a task's handler in the background and stores its outcome as the task's result: `completed`,
 * or `failed` for an `isError` result or a throw (its message as the result's text). While it runs,
 * reads the task every `cancelCheckMs`: once it is terminal (a client cancelled it), the handler's
 * signal is aborted and its outcome dropped. A store that cannot take the outcome leaves the task
 * `working`: a lease-keeping store (`redisTaskStore`) then marks it failed when the lease ends.
 *
 * @example
 * runInBackground(extra.taskStore, task.taskId, work);
 */
export function runInBackground(taskStore: RequestTaskStore, taskId: string, work: TaskWork): void {
  const controller = new AbortController();
  const watch = watchCancellation(taskStore, taskId, work, controller);
  Promise.resolve()
    .then(() => work.run({ taskId, signal: controller.signal }))
    .then(
      (result) => result,
      (error: unknown): CallToolResult => ({
        content: [{ type: 'text', text: error instanceof Error ? error.message : String(error) }],
        isError: true,
      }),
    )
    .then(async (result) => {
      watch.unsubscribe();
      if (controller.signal.aborted) return;
      await taskStore.storeTaskResult(taskId, result.isError ? 'failed' : 'completed', result);
    })
    .catch(() => undefined); // the task is terminal already (cancelled), or the store is down: see above
}

/** Reads the task every `cancelCheckMs`; a terminal status (or a task gone) aborts `controller`. */
function watchCancellation(
  taskStore: RequestTaskStore,
  taskId: string,
  work: TaskWork,
  controller: AbortController,
): { unsubscribe(): void } {
  let reading = false;
  const check = async () => {
    if (reading) return;
    reading = true;
    try {
      const task = await taskStore.getTask(taskId);
      if (task.status === 'cancelled' || task.status === 'failed' || task.status === 'completed')
        controller.abort(new Error(`Task ${taskId} is ${task.status}`));
    } catch {
      // a store that does not answer says nothing about a cancellation
    } finally {
      reading = false;
    }
  };
  return work.scheduler.schedule(function tick() {
    void check();
    this.schedule(undefined, work.cancelCheckMs);
  }, work.cancelCheckMs);
}
