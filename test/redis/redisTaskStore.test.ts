import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { TxErrorCode } from '../../src/index.js';
import { redisTaskStore } from '../../src/redis.js';
import { redisUrl, testRedis, unreachableRedis } from '../support/redis.js';

const { redis, prefix } = testRedis();
const other = new Redis(redisUrl);
afterAll(() => other.disconnect());

const request = { method: 'tools/call', params: { name: 'build' } };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('redisTaskStore', () => {
  it('keeps a task and its result where another replica (another connection) finds them', async () => {
    const one = redisTaskStore(redis, { prefix: `${prefix}a:` });
    const two = redisTaskStore(other, { prefix: `${prefix}a:` });
    const task = await one.createTask({ ttl: 60_000, pollInterval: 250 }, 1, request);
    expect(task).toMatchObject({ status: 'working', ttl: 60_000, pollInterval: 250 });
    expect(await two.getTask(task.taskId)).toMatchObject({ taskId: task.taskId, status: 'working' });
    await two.updateTaskStatus(task.taskId, 'input_required', 'needs a name');
    expect(await one.getTask(task.taskId)).toMatchObject({
      status: 'input_required',
      statusMessage: 'needs a name',
    });
    const result = { content: [{ type: 'text', text: 'built' }] };
    await one.storeTaskResult(task.taskId, 'completed', result);
    expect(await two.getTask(task.taskId)).toMatchObject({ status: 'completed' });
    expect(await two.getTaskResult(task.taskId)).toEqual(result);
    await expect(two.updateTaskStatus(task.taskId, 'cancelled')).rejects.toThrow(
      /terminal status 'completed'/,
    );
    await expect(one.storeTaskResult(task.taskId, 'failed', result)).rejects.toThrow(/terminal/);
    expect(await one.getTask('nope')).toBeNull();
    await expect(one.getTaskResult('nope')).rejects.toThrow(/not found/);
    await one.close();
  });

  it('applies the TTL (capped by maxTtlMs; restarted when the task ends) and expires the task', async () => {
    const store = redisTaskStore(redis, { prefix: `${prefix}ttl:`, maxTtlMs: 300 });
    const task = await store.createTask({ ttl: null }, 1, request);
    expect(task.ttl).toBe(300);
    expect(await redis.pttl(`${prefix}ttl:${task.taskId}`)).toBeGreaterThan(0);
    await store.updateTaskStatus(task.taskId, 'cancelled', 'stop');
    await sleep(450);
    expect(await store.getTask(task.taskId)).toBeNull();
    await store.close();
  });

  it('scopes a task to the session that created it', async () => {
    const store = redisTaskStore(redis, { prefix: `${prefix}s:` });
    const mine = await store.createTask({}, 1, request, 'session-a');
    const shared = await store.createTask({}, 2, request);
    expect(await store.getTask(mine.taskId, 'session-b')).toBeNull();
    expect(await store.getTask(mine.taskId, 'session-a')).not.toBeNull();
    expect(await store.getTask(shared.taskId, 'session-b')).not.toBeNull();
    const listed = await store.listTasks(undefined, 'session-b');
    expect(listed.tasks.map((task) => task.taskId)).toEqual([shared.taskId]);
    const open = redisTaskStore(redis, { prefix: `${prefix}s:`, sessionScoped: false });
    expect(await open.getTask(mine.taskId, 'session-b')).not.toBeNull();
    await store.close();
  });

  it('pages tasks oldest first with an opaque cursor', async () => {
    const store = redisTaskStore(redis, { prefix: `${prefix}p:`, pageSize: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      ids.push((await store.createTask({}, i, request)).taskId);
      await sleep(2);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listTasks(cursor);
      seen.push(...page.tasks.map((task) => task.taskId));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(seen).toEqual(ids);
    await store.close();
  });

  it('marks failed a task whose worker stopped renewing its lease, and renews it while it lives', async () => {
    const store = redisTaskStore(redis, { prefix: `${prefix}l:`, leaseMs: 150 });
    const renewed = await store.createTask({}, 1, request);
    await sleep(400);
    expect(await store.getTask(renewed.taskId)).toMatchObject({ status: 'working' });
    await store.close(); // as if the process died: no more renewals
    await sleep(300);
    const died = await redisTaskStore(other, { prefix: `${prefix}l:` }).getTask(renewed.taskId);
    expect(died).toMatchObject({ status: 'failed' });
    expect(died?.statusMessage).toMatch(/lease expired/);
  });

  it('fails with MCP_TX_STORE_UNAVAILABLE within commandTimeoutMs when Redis is down', async () => {
    const down = unreachableRedis();
    const store = redisTaskStore(down, { commandTimeoutMs: 200 });
    await expect(store.getTask('x')).rejects.toMatchObject({ code: TxErrorCode.StoreUnavailable });
    down.disconnect();
  });
});
