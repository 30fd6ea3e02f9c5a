import type { CallToolResult, Task } from '@modelcontextprotocol/sdk/types.js';
import { defer, map, Observable, type Subscriber, switchMap, throwError } from 'rxjs';
import { type AttemptEnvironment, attemptCall, TxCall, TxCallState, withCallMeta } from '../call/call.js';
import { buildMeta, buildResult, extractData } from '../call/result.js';
import { classifyRejection, classifyToolError, resultText } from '../core/classify.js';
import { isTxError, TxErrorCode, validationError } from '../core/errors.js';
import { isoTime } from '../core/time.js';
import type { JsonObject, TxMeta, TxRequest, TxResult } from '../core/types.js';
import { readWireResponseMeta } from '../core/wire.js';
import type { EventStore } from '../events/eventStore.js';
import { createdTaskOf, runsAsTask, taskCreatingEnv } from './taskCreation.js';
import { logTaskCreated, logTaskEnded, pendingTasksIn } from './taskLog.js';
import {
  type PendingTask,
  splitTaskOptions,
  type TaskEvent,
  type TaskOnlyOptions,
  type TaskSettings,
} from './taskOptions.js';
import { type TaskUpdate, watchTask } from './watchTask.js';

/**
 * What the client lends its tasks, with `O` its call options: the attempt environment, and the
 * pipeline pieces it builds from its config and the tool's policy.
 *
 * @example
 * const tasks = new TaskClient<TxCallOptions>({ env, creation, plain, traced, resumeRequest, events });
 */
export interface TaskHost<O extends object> {
  readonly env: AttemptEnvironment;
  /** The creation call: input checked, `attempt(request)` through the default pipeline but its trace stage. */
  creation(
    name: string,
    args: JsonObject | undefined,
    options: O | undefined,
    attempt: (request: TxRequest) => TxCall,
  ): TxCall;
  /** `tx.call$`: how a tool without task support runs. */
  plain(name: string, args: JsonObject | undefined, options: O | undefined): TxCall;
  /** The whole task in the pipeline's trace stage (one span), counted among the calls in flight. */
  traced(call: TxCall, options: O | undefined): TxCall;
  /** The request a resumed task reports in its metadata (timeout resolved as for a call of `tool`). */
  resumeRequest(tool: string, options: O | undefined): TxRequest;
  /** The event log tasks are logged in, when `record` is on for `tool`. */
  events(tool: string, options: O | undefined): EventStore | undefined;
}

/**
 * Options of `tx.resumeTask$`: the task's tool and creation request id, for the result's metadata
 * and the log (`tool` defaults to `'task'`).
 *
 * @example
 * const [pending] = await tx.pendingTasks();
 * tx.resumeTask$(pending.taskId, { tool: pending.tool, requestId: pending.requestId });
 */
export interface ResumeOptions {
  readonly tool?: string;
  readonly requestId?: string;
}

/**
 * The client side of MCP tasks: `tx.task$`, `tx.resumeTask$`, `tx.cancelTask` and `tx.pendingTasks`
 * delegate here.
 *
 * @example
 * const tasks = new TaskClient(host);
 * tasks.task$('build', { ref: 'main' }, { idempotencyKey: 'build-main' }).subscribe(console.log);
 */
export class TaskClient<O extends object> {
  constructor(private readonly host: TaskHost<O>) {}

  /** `tx.task$`: creates the task (or runs a plain call where tasks are not supported) and watches it. */
  task$(name: string, args: JsonObject | undefined, options?: O & TaskOnlyOptions): Observable<TaskEvent> {
    let split: ReturnType<typeof splitTaskOptions<O>>;
    try {
      split = splitTaskOptions<O>(options);
    } catch (error) {
      return throwError(() => error);
    }
    const { task: settings, call: callOptions } = split;
    const { env } = this.host;
    const creation = this.host.creation(name, args, callOptions, (request) =>
      attemptCall(taskCreatingEnv(env, settings.ttlMs), request),
    );
    const timeoutMs = creation.request.options.timeoutMs;
    return defer(() => runsAsTask(env, name, timeoutMs).catch(() => false)).pipe(
      switchMap((asTask) =>
        asTask ? this.created$(creation, settings, callOptions) : this.plain$(name, args, callOptions),
      ),
    );
  }

  /** `tx.resumeTask$`: watches a task made anywhere, by its id, until its result. */
  resumeTask$(taskId: string, options?: O & TaskOnlyOptions & ResumeOptions): Observable<TaskEvent> {
    if (typeof taskId !== 'string' || taskId === '')
      return throwError(() => validationError('taskId', 'must be a task id'));
    const { tool = 'task', requestId, ...rest } = options ?? ({} as O & ResumeOptions);
    let split: ReturnType<typeof splitTaskOptions<O>>;
    let request: TxRequest;
    try {
      split = splitTaskOptions<O>(rest as O & TaskOnlyOptions);
      const resolved = this.host.resumeRequest(tool, split.call);
      request = requestId === undefined ? resolved : Object.freeze({ ...resolved, requestId });
    } catch (error) {
      return throwError(() => error);
    }
    const { task: settings, call: callOptions } = split;
    const state = new TxCallState();
    const watched = new TxCall(request, state, this.host.env);
    return this.events$(callOptions, (emit) =>
      watched.derive<CallToolResult>((subscriber) => {
        const nowMs = this.host.env.scheduler.now();
        state.startedAtMs = nowMs;
        state.startedAt = isoTime(nowMs);
        return this.watch(watched, taskId, settings, undefined, emit, subscriber, callOptions);
      }),
    );
  }

  /** `tx.cancelTask`: asks the server to cancel the task; resolves with the task as it then is. */
  async cancelTask(taskId: string, options?: { timeoutMs?: number }): Promise<Task> {
    const { env } = this.host;
    try {
      return await env.client.experimental.tasks.cancelTask(taskId, { timeout: options?.timeoutMs });
    } catch (error) {
      throw classifyRejection(error, false);
    }
  }

  /** `tx.pendingTasks`: the tasks created and not seen to end, from the event log. */
  pendingTasks(): Promise<PendingTask[]> {
    const events = this.host.events('', undefined);
    if (events === undefined)
      return Promise.reject(validationError('config.events', 'must be an EventStore for tx.pendingTasks()'));
    return pendingTasksIn(events);
  }

  private plain$(name: string, args: JsonObject | undefined, options: O | undefined): Observable<TaskEvent> {
    return this.host
      .plain(name, args, options)
      .pipe(map((result): TaskEvent => ({ type: 'result', result })));
  }

  /** The creation, then the watch of the task it made; a plain answer is the result. */
  private created$(creation: TxCall, settings: TaskSettings, options: O | undefined): Observable<TaskEvent> {
    return this.events$(options, (emit) =>
      creation.derive<CallToolResult>((subscriber) => {
        let watching: (() => void) | undefined;
        const creating = creation.subscribe({
          next: (created) => {
            const task = createdTaskOf(created.result);
            if (task === undefined) {
              subscriber.next(created);
              return;
            }
            watching = this.startWatch(creation, task, created.meta, settings, emit, subscriber, options);
          },
          error: (error: unknown) => subscriber.error(error),
          complete: () => {
            if (watching === undefined) subscriber.complete();
          },
        });
        return () => {
          creating.unsubscribe();
          watching?.();
        };
      }),
    );
  }

  /** Logs the created task, tells the subscriber, then watches it. */
  private startWatch(
    creation: TxCall,
    task: Task,
    meta: TxMeta,
    settings: TaskSettings,
    emit: (event: TaskEvent) => void,
    subscriber: Subscriber<TxResult>,
    options: O | undefined,
  ): () => void {
    let stop: (() => void) | undefined;
    let stopped = false;
    const events = meta.duplicate ? undefined : this.host.events(creation.request.name, options);
    const logged =
      events === undefined ? Promise.resolve() : logTaskCreated(events, creation.request, task.taskId);
    logged.then(() => {
      if (stopped) {
        if (settings.cancelOnUnsubscribe) void this.cancelTask(task.taskId).catch(() => undefined);
        return;
      }
      // Watching first: the subscriber may leave on `created`, which must then stop (or cancel) it.
      stop = this.watch(creation, task.taskId, settings, meta, emit, subscriber, options);
      emit({ type: 'created', taskId: task.taskId, task, meta });
    });
    return () => {
      stopped = true;
      stop?.();
    };
  }

  /** Watches the task: a `status` event per status change, then its result as the call's result (or failure). */
  private watch(
    call: TxCall,
    taskId: string,
    settings: TaskSettings,
    creationMeta: TxMeta | undefined,
    emit: (event: TaskEvent) => void,
    subscriber: Subscriber<TxResult>,
    options: O | undefined,
  ): () => void {
    let last: string | undefined;
    const meta = creationMeta ?? this.metaNow(call, false);
    const subscription = watchTask(this.host.env, taskId, settings, call.request.options.timeoutMs).subscribe(
      {
        next: (update: TaskUpdate) => {
          const { task } = update;
          if (task.status !== last) {
            last = task.status;
            emit({
              type: 'status',
              taskId,
              status: task.status,
              statusMessage: task.statusMessage,
              task,
              meta,
            });
          }
          if (update.kind === 'result') this.finish(call, update, meta, subscriber, options);
        },
        error: (error: unknown) => {
          const logged = isCancelledTask(error, taskId)
            ? this.logEnd(call, taskId, 'cancelled', options)
            : undefined;
          void Promise.resolve(logged).then(() => subscriber.error(withCallMeta(call, error)));
        },
      },
    );
    return () => subscription.unsubscribe();
  }

  /** The task's result as the call's: `data` and `meta` as `call$` makes them; a tool error fails the call. */
  private finish(
    call: TxCall,
    update: Extract<TaskUpdate, { kind: 'result' }>,
    creationMeta: TxMeta,
    subscriber: Subscriber<TxResult>,
    options: O | undefined,
  ): void {
    const { result, task } = update;
    void this.logEnd(call, task.taskId, task.status, options).then(() => {
      if (result.isError) {
        const wire = readWireResponseMeta(result);
        const error = classifyToolError(resultText(result.content), wire, call.env.retryableErrors);
        subscriber.error(withCallMeta(call, error));
        return;
      }
      subscriber.next(buildResult(result, extractData(result), this.metaNow(call, creationMeta.duplicate)));
      subscriber.complete();
    });
  }

  private metaNow(call: TxCall, duplicate: boolean): TxMeta {
    const { state, env } = call;
    const timing = {
      attempts: state.attempts,
      startedAt: state.startedAt,
      startedAtMs: state.startedAtMs,
      nowMs: env.scheduler.now(),
    };
    const outcome = {
      ack: true,
      processed: true,
      duplicate,
      status: 'completed' as const,
      serverSupportsTx: env.serverSupportsTx(),
    };
    return buildMeta(call.request, timing, outcome);
  }

  /** Logs the end of the task (before the caller sees it, as `record` does), when there is a log. */
  private async logEnd(call: TxCall, taskId: string, status: string, options: O | undefined): Promise<void> {
    const events = this.host.events(call.request.name, options);
    if (events !== undefined) await logTaskEnded(events, call.request.name, taskId, status);
  }

  /** The task's events: `run(emit)` is the whole task as one call, traced; its result is the last event. */
  private events$(
    options: O | undefined,
    run: (emit: (event: TaskEvent) => void) => TxCall,
  ): Observable<TaskEvent> {
    return new Observable<TaskEvent>((subscriber) => {
      let taskId: string | undefined;
      const whole = run((event) => {
        if (event.type !== 'result') taskId = event.taskId;
        subscriber.next(event);
      });
      return this.host.traced(whole, options).subscribe({
        next: (result) =>
          subscriber.next(
            taskId === undefined ? { type: 'result', result } : { type: 'result', taskId, result },
          ),
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
    });
  }
}

/** Whether the watch of `taskId` failed because the task was cancelled (not because it could not be polled). */
function isCancelledTask(error: unknown, taskId: string): boolean {
  return isTxError(error, TxErrorCode.Cancelled) && error.message.startsWith(`Task ${taskId} was cancelled`);
}
