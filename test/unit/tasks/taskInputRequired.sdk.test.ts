import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { lastValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../../src/index.js';
import type { TaskEvent } from '../../../src/tasks/taskOptions.js';
import { until } from '../../support/fixture.js';
import { type ControlledTaskServer, connectControlled, jsonResult } from './controlledTaskServer.js';

let fixture: ControlledTaskServer | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const statuses = (events: TaskEvent[]) =>
  events.flatMap((event) => (event.type === 'status' ? [event.status] : []));

/**
 * What the SDK's server does for a task that needs input: it marks the task `input_required` and
 * sends its request (here an elicitation) related to the task, which its message queue delivers on
 * the client's `tasks/result`; the answer lets the work finish.
 */
async function askForRef(taskId: string): Promise<void> {
  const { server, taskStore } = fixture as ControlledTaskServer;
  await taskStore.updateTaskStatus(taskId, 'input_required', 'which ref?');
  const answer = await server.server.elicitInput(
    {
      mode: 'form',
      message: 'Which ref?',
      requestedSchema: { type: 'object', properties: { ref: { type: 'string' } }, required: ['ref'] },
    },
    { relatedTask: { taskId } },
  );
  await taskStore.updateTaskStatus(taskId, 'working');
  await taskStore.storeTaskResult(taskId, 'completed', jsonResult({ ref: answer.content?.ref }));
}

describe('a task that needs input (input_required, real SDK server)', () => {
  it('emits input_required, asks tasks/result at once (the server sends its request there), then ends', async () => {
    const events = new MemoryEventStore();
    fixture = await connectControlled({
      config: { events },
      pollIntervalMs: 50,
      capabilities: { elicitation: { form: {} } },
    });
    const { tx, client, methods } = fixture;
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return { action: 'accept', content: { ref: 'main' } };
    });
    const seen: TaskEvent[] = [];
    let done = false;
    tx.task$('job', {}).subscribe({
      next: (event) => seen.push(event),
      complete: () => (done = true),
    });
    await until(() => statuses(seen).includes('working'));
    const taskId = (seen[0] as Extract<TaskEvent, { type: 'created' }>).taskId;
    const polls = methods.length;
    await askForRef(taskId);
    await until(() => done, 3_000);

    expect(asked).toEqual(['Which ref?']);
    expect(statuses(seen)).toEqual(['working', 'input_required', 'completed']);
    expect(seen.at(-1)).toMatchObject({ type: 'result', taskId, result: { data: { ref: 'main' } } });
    // after the poll that saw input_required: tasks/result at once, then one read of the final status
    expect(methods.slice(polls)).toEqual(['tasks/get', 'tasks/result', 'tasks/get']);
    expect(await tx.pendingTasks()).toEqual([]);
    const ended = await lastValueFrom(events.read$({ type: ['TaskEnded'] }));
    expect(ended.data).toEqual({ taskId, status: 'completed' });
  });
});
