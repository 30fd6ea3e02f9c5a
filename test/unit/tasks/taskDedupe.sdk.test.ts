import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../../src/tasks/taskOptions.js';
import { until } from '../../support/fixture.js';
import { type ControlledTaskServer, connectControlled, jsonResult } from './controlledTaskServer.js';

let fixture: ControlledTaskServer | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

type Created = Extract<TaskEvent, { type: 'created' }>;
type Result = Extract<TaskEvent, { type: 'result' }>;

describe('task$ deduped in the client (dedupe on by default)', () => {
  it('sends one creation for two task$ with one idempotency key; both watch the same task', async () => {
    fixture = await connectControlled({ pollIntervalMs: 10 });
    const { tx, taskStore, methods, created } = fixture;
    const key = { idempotencyKey: 'job-42' };
    const first = lastValueFrom(tx.task$('job', { n: 1 }, key).pipe(toArray()));
    const second = lastValueFrom(tx.task$('job', { n: 1 }, key).pipe(toArray()));
    await until(() => created.length === 1);
    await taskStore.storeTaskResult(created[0] as string, 'completed', jsonResult({ n: 1 }));
    const [a, b] = await Promise.all([first, second]);

    expect(methods.filter((method) => method === 'tools/call')).toHaveLength(1);
    expect(created).toHaveLength(1);
    const [createdA, createdB] = [a[0] as Created, b[0] as Created];
    expect(createdA.taskId).toBe(created[0]);
    expect(createdB.taskId).toBe(created[0]);
    expect([createdA.meta.duplicate, createdB.meta.duplicate].sort()).toEqual([false, true]);
    for (const events of [a, b]) {
      // each caller keeps its own request id, as with call$'s dedupe
      const { requestId } = (events[0] as Created).meta;
      expect(events.at(-1)).toMatchObject({
        type: 'result',
        taskId: created[0],
        result: { data: { n: 1 }, meta: { requestId } },
      });
    }
    const duplicates = [a, b].map((events) => (events.at(-1) as Result).result.meta.duplicate);
    expect(duplicates.sort()).toEqual([false, true]);
  });

  it('a later task$ with the key gets the same task from the kept creation, without a request', async () => {
    fixture = await connectControlled({ pollIntervalMs: 10 });
    const { tx, taskStore, methods, created } = fixture;
    const key = { idempotencyKey: 'job-43' };
    const first = lastValueFrom(tx.task$('job', {}, key));
    await until(() => created.length === 1);
    await taskStore.storeTaskResult(created[0] as string, 'completed', jsonResult({ ok: true }));
    await first;
    const again = await lastValueFrom(tx.task$('job', {}, key).pipe(toArray()));
    expect(methods.filter((method) => method === 'tools/call')).toHaveLength(1);
    expect(again[0]).toMatchObject({ type: 'created', taskId: created[0], meta: { duplicate: true } });
    expect(again.at(-1)).toMatchObject({
      type: 'result',
      result: { data: { ok: true }, meta: { duplicate: true } },
    });
  });
});
