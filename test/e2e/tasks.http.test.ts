import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMcpTx, type McpTx, TxError } from '../../src/index.js';
import { JsonlEventStore } from '../../src/node.js';
import type { TaskEvent } from '../../src/tasks/taskOptions.js';
import { scriptArgs } from '../support/childScript.js';
import { redisUrl, testRedis } from '../support/redis.js';

const run = promisify(execFile);
const serverMain = fileURLToPath(new URL('../support/taskHttpServerMain.ts', import.meta.url));
const clientMain = fileURLToPath(new URL('../support/taskClientMain.ts', import.meta.url));
const { redis, prefix } = testRedis();

/** A task server replica in a process of its own, on the shared Redis. */
async function startReplica(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, scriptArgs(serverMain), {
    env: { ...process.env, REDIS_URL: redisUrl, PREFIX: prefix, LEASE_MS: '600', PORT: '0' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      const match = /listening (\d+)/.exec(chunk.toString());
      if (match?.[1]) resolve(match[1]);
    });
    child.on('exit', () => reject(new Error('the replica exited before listening')));
  });
  return { child, url: `http://127.0.0.1:${port}/mcp` };
}

const txOn = (url: string, events?: JsonlEventStore): McpTx =>
  createMcpTx(() => new StreamableHTTPClientTransport(new URL(url)), events ? { events } : {});
const runsOf = async (key: string) => Number(await redis.hget(`${prefix}runs`, key));

let one: { child: ChildProcess; url: string };
let two: { child: ChildProcess; url: string };
let dir: string;
const clients: McpTx[] = [];
beforeAll(async () => {
  [one, two] = await Promise.all([startReplica(), startReplica()]);
  dir = await mkdtemp(join(tmpdir(), 'mcp-tx-tasks-'));
});
afterAll(async () => {
  await Promise.all(clients.map((tx) => tx.close({ timeoutMs: 0 })));
  one.child.kill('SIGKILL');
  two.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('tasks across processes (Streamable HTTP, two replicas on one Redis)', () => {
  it('process A creates a task and exits; process B finds it pending and resumes it on the other replica; it ran once', async () => {
    const events = join(dir, 'events.jsonl');
    const { stdout } = await run(process.execPath, scriptArgs(clientMain), {
      env: { ...process.env, URL: one.url, EVENTS: events, KEY: 'restart', MS: '600' },
    });
    const taskId = /created (\w+)/.exec(stdout)?.[1];
    expect(taskId).toBeDefined();

    const tx = txOn(two.url, new JsonlEventStore(events));
    clients.push(tx);
    const pending = await tx.pendingTasks();
    expect(pending).toMatchObject([{ taskId, tool: 'build', idempotencyKey: 'build-restart' }]);
    const { tool, requestId } = pending[0] ?? {};
    const seen = await lastValueFrom(tx.resumeTask$(taskId as string, { tool, requestId }).pipe(toArray()));
    const statuses = seen.flatMap((event) => (event.type === 'status' ? [event.status] : []));
    expect(statuses.at(-1)).toBe('completed');
    const last = seen.at(-1) as Extract<TaskEvent, { type: 'result' }>;
    expect(last.result.data).toEqual({ built: 'restart', run: 1 });
    expect(last.result.meta).toMatchObject({ tool: 'build', requestId, status: 'completed' });
    expect(await tx.pendingTasks()).toEqual([]);
    expect(await runsOf('restart')).toBe(1);
  });

  it('a keyed creation retried on the other replica (its first response lost) gets the same task', async () => {
    const first = txOn(one.url);
    const retry = txOn(two.url);
    clients.push(first, retry);
    const options = { idempotencyKey: 'build-once' };
    const created = await firstValueFrom(first.task$('build', { key: 'once', ms: 300 }, options));
    const again = await lastValueFrom(
      retry.task$('build', { key: 'once', ms: 300 }, options).pipe(toArray()),
    );
    expect(again[0]).toMatchObject({ type: 'created', taskId: (created as { taskId: string }).taskId });
    expect((again.at(-1) as Extract<TaskEvent, { type: 'result' }>).result.data).toEqual({
      built: 'once',
      run: 1,
    });
    expect(await runsOf('once')).toBe(1);
  });

  it('a replica killed mid-task: the task is failed once its lease runs out, never stuck in working', async () => {
    const victim = await startReplica();
    const tx = txOn(victim.url);
    const watcher = txOn(two.url);
    clients.push(tx, watcher);
    const created = await firstValueFrom(tx.task$('build', { key: 'killed', ms: 30_000 }));
    const taskId = (created as { taskId: string }).taskId;
    victim.child.kill('SIGKILL');
    const started = Date.now();
    const failure = await lastValueFrom(watcher.resumeTask$(taskId, { tool: 'build' })).catch(
      (error) => error,
    );
    expect(failure).toBeInstanceOf(TxError);
    expect((failure as TxError).message).toMatch(/lease expired/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await tx.close({ timeoutMs: 0 });
  });
});
