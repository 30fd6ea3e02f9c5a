import { isTerminal } from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import {
  type CallToolResult,
  CallToolResultSchema,
  ErrorCode,
  McpError,
  type Task,
} from '@modelcontextprotocol/sdk/types.js';
import { Observable, type Subscriber } from 'rxjs';
import type { AttemptEnvironment } from '../call/call.js';
import { classifyRejection } from '../core/classify.js';
import { TxError, TxErrorCode } from '../core/errors.js';
import { connectedWithin } from './connected.js';
import type { TaskSettings } from './taskOptions.js';

/**
 * What a watch of a task sees: each status it polls (`task`, the first one included), then the
 * stored result of a task that ended (`completed` or `failed`: its result says which).
 *
 * @example
 * watchTask(env, taskId, settings, 5_000).subscribe((update) => console.log(update.kind));
 */
export type TaskUpdate =
  | { readonly kind: 'task'; readonly task: Task }
  | { readonly kind: 'result'; readonly task: Task; readonly result: CallToolResult };

/**
 * Polls a task (`tasks/get`) until it ends, waiting the task's `pollInterval` between polls (else
 * `settings.pollIntervalMs`), then fetches its result (`tasks/result`; a failed task without one
 * answers its status message as a tool error). A task that needs input (`input_required`, which the
 * SDK's server sets when a task's work sends a request related to it) is asked for its result at
 * once: the server delivers its requests (elicitation, sampling) on that call and answers it once
 * the task ended, whose final status is then read again (one more `tasks/get`). Each poll is
 * bounded by `timeoutMs` and waits for the connection mcp-tx keeps, if any. A poll that fails
 * (timeout, network, server error) is tried again after `settings.pollIntervalMs · 2^n` (`n` the
 * failures in a row, at most `settings.maxPollDelayMs`), up to `settings.maxPollFailures` failures
 * in a row; then, or at once for a task the server does not know (`-32602`: gone, or
 * another session's), the watch fails with a `TxError` naming the task id, so that it can be
 * resumed. A `cancelled` task fails the watch with `MCP_TX_CANCELLED`. Unsubscribing stops polling
 * (and, with `settings.cancelOnUnsubscribe`, cancels the task on the server).
 *
 * @example
 * watchTask(env, 'a1b2…', settings, 30_000).subscribe({ next: console.log, error: (e) => console.error(e.message) });
 */
export function watchTask(
  env: AttemptEnvironment,
  taskId: string,
  settings: TaskSettings,
  timeoutMs: number,
): Observable<TaskUpdate> {
  return new Observable<TaskUpdate>((subscriber) => {
    const poller = new Poller(env, taskId, settings, timeoutMs, subscriber);
    poller.poll();
    return () => poller.stop();
  });
}

class Poller {
  /** The request in flight: each has its own signal (the SDK leaves a listener on the signal it is given). */
  private inFlight?: AbortController;
  private stopped = false;
  private failures = 0;
  private ended = false;
  private timer?: { unsubscribe(): void };

  constructor(
    private readonly env: AttemptEnvironment,
    private readonly taskId: string,
    private readonly settings: TaskSettings,
    private readonly timeoutMs: number,
    private readonly subscriber: Subscriber<TaskUpdate>,
  ) {}

  poll(): void {
    this.ask(() => this.getTask()).then((task) => task !== undefined && this.onTask(task));
  }

  stop(): void {
    this.stopped = true;
    this.timer?.unsubscribe();
    this.inFlight?.abort('unsubscribed');
    if (this.ended || !this.settings.cancelOnUnsubscribe) return;
    this.env.client.experimental.tasks
      .cancelTask(this.taskId, { timeout: this.timeoutMs })
      .catch(() => undefined);
  }

  private onTask(task: Task): void {
    this.subscriber.next({ kind: 'task', task });
    if (task.status === 'cancelled') {
      this.end();
      this.subscriber.error(
        new TxError(TxErrorCode.Cancelled, `Task ${this.taskId} was cancelled${suffix(task.statusMessage)}`),
      );
      return;
    }
    if (isTerminal(task.status) || task.status === 'input_required') {
      this.fetchResult(task);
      return;
    }
    this.later(task.pollInterval ?? this.settings.pollIntervalMs, () => this.poll());
  }

  private fetchResult(task: Task): void {
    const stored = () =>
      this.env.client.experimental.tasks.getTaskResult(
        this.taskId,
        CallToolResultSchema,
        this.requestOptions(),
      );
    // A failed task may have no result (its worker died, say): its status message says why.
    const fetch = task.status === 'failed' ? () => stored().catch(() => failedResult(task)) : stored;
    this.ask(fetch).then((result) => {
      if (result === undefined) return;
      if (isTerminal(task.status)) {
        this.deliver(task, result);
        return;
      }
      // Asked while it needed input: `tasks/result` answered once the task ended, so its last
      // status (`completed`, `failed`) is read again rather than reported as `input_required`.
      this.ask(() => this.getTask()).then((ended) => ended !== undefined && this.deliver(ended, result));
    });
  }

  private deliver(task: Task, result: CallToolResult): void {
    this.end();
    this.subscriber.next({ kind: 'result', task, result });
    this.subscriber.complete();
  }

  private getTask(): Promise<Task> {
    return this.env.client.experimental.tasks.getTask(this.taskId, this.requestOptions());
  }

  /** Runs one request; a failure is retried (after a backoff) by polling again, or fails the watch. */
  private async ask<T>(request: () => Promise<T>): Promise<T | undefined> {
    try {
      await connectedWithin(this.env, this.timeoutMs);
      const answer = await request();
      this.failures = 0;
      return answer;
    } catch (error) {
      if (this.stopped) return undefined;
      this.failed(error);
      return undefined;
    }
  }

  private failed(error: unknown): void {
    this.failures += 1;
    const unknownTask = error instanceof McpError && error.code === ErrorCode.InvalidParams;
    if (unknownTask || this.failures > this.settings.maxPollFailures) {
      this.end();
      this.subscriber.error(pollFailure(this.taskId, error, unknownTask));
      return;
    }
    const delay = Math.min(this.settings.pollIntervalMs * 2 ** this.failures, this.settings.maxPollDelayMs);
    this.later(delay, () => this.poll());
  }

  private later(delayMs: number, then: () => void): void {
    if (this.stopped) return;
    this.timer = this.env.scheduler.schedule(then, delayMs);
  }

  private requestOptions() {
    this.inFlight = new AbortController();
    return { timeout: this.timeoutMs, signal: this.inFlight.signal };
  }

  private end(): void {
    this.ended = true;
  }
}

/** The result of a failed task that has none stored: its status message, as a tool error. */
function failedResult(task: Task): CallToolResult {
  const text = task.statusMessage ?? `Task ${task.taskId} failed`;
  return { content: [{ type: 'text', text }], isError: true };
}

function suffix(message: string | undefined): string {
  return message === undefined ? '' : `: ${message}`;
}

function pollFailure(taskId: string, error: unknown, unknownTask: boolean): TxError {
  if (unknownTask)
    return new TxError(
      TxErrorCode.ToolError,
      `Task ${taskId} is unknown to the server (expired or never made)`,
      {
        cause: error,
      },
    );
  const cause = classifyRejection(error, false);
  return new TxError(
    cause.code,
    `Task ${taskId} could not be polled (${cause.message}); resume it with tx.resumeTask$('${taskId}')`,
    { retryable: cause.retryable, cause: error },
  );
}
