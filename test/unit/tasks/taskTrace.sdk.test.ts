import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../../src/tasks/taskOptions.js';
import { until } from '../../support/fixture.js';
import { type ControlledTaskServer, connectControlled, jsonResult } from './controlledTaskServer.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('test');

let fixture: ControlledTaskServer | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
  exporter.reset();
});

const statuses = (events: TaskEvent[]) =>
  events.flatMap((event) => (event.type === 'status' ? [event.status] : []));

describe('a task traced', () => {
  it('is one CLIENT span `tools/call <tool>` for the whole task, ended when its result arrives', async () => {
    fixture = await connectControlled({ config: { trace: { tracer } }, pollIntervalMs: 10 });
    const { tx, taskStore } = fixture;
    const events: TaskEvent[] = [];
    let done = false;
    tx.task$('job', {}, { idempotencyKey: 'job-1', transactionId: 'wf-1' }).subscribe({
      next: (event) => events.push(event),
      complete: () => (done = true),
    });
    await until(() => statuses(events).includes('working'));
    const taskId = (events[0] as Extract<TaskEvent, { type: 'created' }>).taskId;
    await taskStore.updateTaskStatus(taskId, 'input_required', 'which ref?');
    await until(() => statuses(events).includes('input_required'));
    expect(exporter.getFinishedSpans()).toHaveLength(0); // the creation answered long ago: still open

    await taskStore.storeTaskResult(taskId, 'completed', jsonResult({ built: true }));
    await until(() => done);
    expect(statuses(events)).toEqual(['working', 'input_required', 'completed']);
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    const [span] = spans;
    const result = events.at(-1) as Extract<TaskEvent, { type: 'result' }>;
    expect(span?.name).toBe('tools/call job');
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toEqual({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'job',
      'gen_ai.operation.name': 'execute_tool',
      'mcp_tx.request_id': result.result.meta.requestId,
      'mcp_tx.idempotency_key': 'job-1',
      'mcp_tx.transaction_id': 'wf-1',
      'mcp_tx.attempts': 1,
      'mcp_tx.duplicate': false,
      'mcp_tx.status': 'completed',
    });
  });

  it('ends its one span with the error of a failed task', async () => {
    fixture = await connectControlled({ config: { trace: { tracer } }, pollIntervalMs: 10 });
    const { tx, taskStore } = fixture;
    let failure: unknown;
    tx.task$('job', {}).subscribe({ error: (error: unknown) => (failure = error) });
    await until(() => fixture?.created.length === 1);
    const failed = { content: [{ type: 'text' as const, text: 'job broke' }], isError: true };
    await taskStore.storeTaskResult(fixture.created[0] as string, 'failed', failed);
    await until(() => failure !== undefined);
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.name).toBe('tools/call job');
    expect(spans[0]?.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'job broke' });
  });
});
