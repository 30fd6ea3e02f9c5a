import { ErrorCode, GetTaskRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { TxError, TxErrorCode } from '../../../src/index.js';
import type { TaskEvent } from '../../../src/tasks/taskOptions.js';
import { advanceVirtual } from '../../support/virtualTime.js';
import { type ControlledTaskServer, connectControlled, jsonResult } from './controlledTaskServer.js';

let fixture: ControlledTaskServer | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const POLLING = { pollIntervalMs: 100, maxPollDelayMs: 500, maxPollFailures: 3 };

/**
 * A real server whose `tasks/get` throws (an internal error: transient) for the first `failures`
 * polls, and the virtual time each poll reached it, on an McpTx in virtual time.
 */
async function flakyPolls(failures: number) {
  const scheduler = new VirtualTimeScheduler();
  fixture = await connectControlled({ config: { scheduler }, pollIntervalMs: 1_000 });
  const { server, taskStore } = fixture;
  const polledAt: number[] = [];
  let left = failures;
  server.server.setRequestHandler(GetTaskRequestSchema, async (request) => {
    polledAt.push(scheduler.now());
    if (left-- > 0) throw new McpError(ErrorCode.InternalError, 'task store blip');
    const task = await taskStore.getTask(request.params.taskId);
    if (task === null) throw new McpError(ErrorCode.InvalidParams, 'Task not found');
    return { ...task };
  });
  const events: TaskEvent[] = [];
  const outcome: { error?: unknown; done: boolean } = { done: false };
  fixture.tx.task$('job', {}, POLLING).subscribe({
    next: (event) => events.push(event),
    error: (error: unknown) => Object.assign(outcome, { error, done: true }),
    complete: () => Object.assign(outcome, { done: true }),
  });
  return { scheduler, polledAt, events, outcome, taskStore };
}

/** The waits between the polls the server saw. */
const gaps = (times: number[]) => times.slice(1).map((time, index) => time - (times[index] as number));

describe('task polling (virtual time, real SDK server)', () => {
  it('backs off pollIntervalMs·2^n (capped by maxPollDelayMs) and recovers within maxPollFailures', async () => {
    const { scheduler, polledAt, events, outcome, taskStore } = await flakyPolls(POLLING.maxPollFailures);
    await advanceVirtual(scheduler, 1_100); // 3 failures (waits 200, 400, 500), then `working`
    expect(gaps(polledAt)).toEqual([200, 400, 500]);
    expect(events.map((event) => event.type)).toEqual(['created', 'status']);
    const taskId = (events[0] as Extract<TaskEvent, { type: 'created' }>).taskId;
    await taskStore.storeTaskResult(taskId, 'completed', jsonResult({ built: true }));
    await advanceVirtual(scheduler, 1_000); // the task's own pollInterval again after a success
    expect(gaps(polledAt)).toEqual([200, 400, 500, 1_000]);
    expect(outcome).toEqual({ done: true });
    expect(events.at(-1)).toMatchObject({ type: 'result', taskId, result: { data: { built: true } } });
  });

  it('fails after maxPollFailures + 1 failures in a row, naming the task and how to resume it', async () => {
    const { scheduler, polledAt, events, outcome } = await flakyPolls(10);
    await advanceVirtual(scheduler, 5_000);
    expect(gaps(polledAt)).toEqual([200, 400, 500]);
    expect(outcome.done).toBe(true);
    const taskId = (events[0] as Extract<TaskEvent, { type: 'created' }>).taskId;
    expect(events.map((event) => event.type)).toEqual(['created']);
    expect(outcome.error).toBeInstanceOf(TxError);
    const error = outcome.error as TxError;
    expect(error.message).toContain(`Task ${taskId} could not be polled`);
    expect(error.message).toContain(`resume it with tx.resumeTask$('${taskId}')`);
    expect(error.message).toContain('task store blip');
    expect(error.meta?.tool).toBe('job');
  });

  it('fails at once, without backing off, for a task the server does not know', async () => {
    const scheduler = new VirtualTimeScheduler();
    fixture = await connectControlled({ config: { scheduler } });
    const outcome: { error?: unknown } = {};
    fixture.tx.resumeTask$('no-such-task', POLLING).subscribe({ error: (error) => (outcome.error = error) });
    await advanceVirtual(scheduler, 10);
    expect(outcome.error).toMatchObject({ code: TxErrorCode.ToolError });
    expect((outcome.error as TxError).message).toContain('Task no-such-task is unknown to the server');
    expect(fixture.methods.filter((method) => method === 'tasks/get')).toHaveLength(1);
  });
});
