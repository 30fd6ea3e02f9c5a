import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMcpTx,
  MemoryEventStore,
  mcpTxClientCapabilities,
  memoryIdempotencyStore,
  type TxConfig,
  TxError,
  TxErrorCode,
} from '../../../src/index.js';
import type { TaskEvent } from '../../../src/tasks/taskOptions.js';
import { createTaskServer, type TaskServerStats } from '../../support/taskServer.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A real McpServer with task tools, and an McpTx on a real SDK Client over InMemoryTransport. */
async function connect(options: { tasks?: boolean; config?: TxConfig; stats?: TaskServerStats } = {}) {
  const taskStore = options.tasks === false ? undefined : new InMemoryTaskStore();
  const { server, stats } = createTaskServer({
    taskStore,
    store: memoryIdempotencyStore(),
    stats: options.stats,
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'test', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  await client.connect(clientSide);
  const tx = createMcpTx(client, { dedupe: false, ...options.config });
  closers.push(async () => {
    await tx.close();
    await server.close();
    taskStore?.cleanup();
  });
  return { tx, stats, taskStore, client };
}

const kinds = (events: TaskEvent[]) =>
  events.map((event) => (event.type === 'status' ? `status:${event.status}` : event.type));

describe('tx.task$', () => {
  it('emits created, the statuses in order, then the same result call$ gives', async () => {
    const { tx, stats } = await connect();
    const events = await lastValueFrom(tx.task$('build', { key: 'a', ms: 150 }).pipe(toArray()));
    expect(kinds(events)).toEqual(['created', 'status:working', 'status:completed', 'result']);
    const created = events[0] as Extract<TaskEvent, { type: 'created' }>;
    const last = events.at(-1) as Extract<TaskEvent, { type: 'result' }>;
    expect(last.taskId).toBe(created.taskId);
    expect(last.result.data).toEqual({ built: 'a', run: 1 });
    expect(last.result.meta).toMatchObject({
      tool: 'build',
      status: 'completed',
      attempts: 1,
      duplicate: false,
    });
    expect(last.result.meta.requestId).toBe(created.meta.requestId);
    expect(last.result.meta.durationMs).toBeGreaterThanOrEqual(100);

    const plain = await tx.call('echo', { value: 'x' });
    const viaTask = await lastValueFrom(tx.task$('echo', { value: 'x' }));
    expect(viaTask).toMatchObject({ type: 'result' });
    expect((viaTask as Extract<TaskEvent, { type: 'result' }>).result.data).toEqual(plain.data);
    expect(stats.runs.a).toBe(1);
  });

  it('runs as a plain call on a server without task support, emitting only the result', async () => {
    const { tx, stats } = await connect({ tasks: false });
    const events = await lastValueFrom(tx.task$('build', { key: 'p', ms: 10 }).pipe(toArray()));
    expect(kinds(events)).toEqual(['result']);
    expect((events[0] as Extract<TaskEvent, { type: 'result' }>).result.data).toEqual({ built: 'p', run: 1 });
    expect(stats.runs.p).toBe(1);
  });

  it('fails with the tool error of a failed task, carrying the call metadata', async () => {
    const { tx } = await connect();
    const failure = await lastValueFrom(
      tx.task$('build', { key: 'f', ms: 10, fail: true }, { retry: false }),
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TxError);
    expect((failure as TxError).message).toContain('build f broke');
    expect((failure as TxError).meta?.tool).toBe('build');
  });

  it('detaches on unsubscribe (the task goes on), and resumeTask$ gets its result', async () => {
    const { tx, stats } = await connect();
    const created = await firstValueFrom(tx.task$('build', { key: 'd', ms: 200 }));
    expect(created.type).toBe('created');
    const taskId = (created as Extract<TaskEvent, { type: 'created' }>).taskId;
    const events = await lastValueFrom(tx.resumeTask$(taskId, { tool: 'build' }).pipe(toArray()));
    expect(kinds(events)).toEqual(['status:working', 'status:completed', 'result']);
    expect((events.at(-1) as Extract<TaskEvent, { type: 'result' }>).result.data).toEqual({
      built: 'd',
      run: 1,
    });
    expect(stats.runs.d).toBe(1);
  });

  it('cancels on unsubscribe with cancelOnUnsubscribe', async () => {
    const { tx, stats } = await connect();
    const created = await firstValueFrom(
      tx.task$('build', { key: 'c', ms: 5_000 }, { cancelOnUnsubscribe: true }),
    );
    const taskId = (created as Extract<TaskEvent, { type: 'created' }>).taskId;
    await until(() => stats.aborted === 1);
    const watched = await lastValueFrom(tx.resumeTask$(taskId)).catch((error: unknown) => error);
    expect(watched).toMatchObject({ code: TxErrorCode.Cancelled });
  });

  it('cancelTask cancels a task: its watcher fails with MCP_TX_CANCELLED and the handler is aborted', async () => {
    const { tx, stats } = await connect();
    const events: TaskEvent[] = [];
    let failure: unknown;
    tx.task$('build', { key: 'c2', ms: 5_000 }).subscribe({
      next: (event) => events.push(event),
      error: (error) => (failure = error),
    });
    await until(() => events.length > 0);
    const task = await tx.cancelTask((events[0] as Extract<TaskEvent, { type: 'created' }>).taskId);
    expect(task.status).toBe('cancelled');
    await until(() => failure !== undefined && stats.aborted === 1);
    expect(failure).toBeInstanceOf(TxError);
    expect(failure).toMatchObject({ code: TxErrorCode.Cancelled });
    expect(kinds(events)).toEqual(['created', 'status:working', 'status:cancelled']);
  });

  it('a keyed creation retried after its response was lost gets the same task', async () => {
    const { tx, stats } = await connect();
    const key = { idempotencyKey: 'build-k' };
    const first = await firstValueFrom(tx.task$('build', { key: 'k', ms: 100 }, key));
    const again = await lastValueFrom(tx.task$('build', { key: 'k', ms: 100 }, key).pipe(toArray()));
    const firstId = (first as Extract<TaskEvent, { type: 'created' }>).taskId;
    expect(again[0]).toMatchObject({ type: 'created', taskId: firstId, meta: { duplicate: true } });
    expect((again.at(-1) as Extract<TaskEvent, { type: 'result' }>).result.meta.duplicate).toBe(true);
    expect(stats.runs.k).toBe(1);
  });

  it('lists the pending tasks from the event log until they end', async () => {
    const events = new MemoryEventStore();
    const { tx } = await connect({ config: { events } });
    const created = await firstValueFrom(tx.task$('build', { key: 'l', ms: 150 }, { idempotencyKey: 'l-1' }));
    const taskId = (created as Extract<TaskEvent, { type: 'created' }>).taskId;
    expect(await tx.pendingTasks()).toMatchObject([{ taskId, tool: 'build', idempotencyKey: 'l-1' }]);
    await lastValueFrom(tx.resumeTask$(taskId, { tool: 'build' }));
    await until(async () => (await tx.pendingTasks()).length === 0);
  });

  it('rejects pendingTasks without an event log, and bad task options', async () => {
    const { tx } = await connect();
    await expect(tx.pendingTasks()).rejects.toMatchObject({ code: TxErrorCode.Validation });
    await expect(
      lastValueFrom(tx.task$('build', { key: 'v', ms: 1 }, { ttlMs: -1 } as never)),
    ).rejects.toMatchObject({ code: TxErrorCode.Validation, field: 'options.ttlMs' });
  });
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
