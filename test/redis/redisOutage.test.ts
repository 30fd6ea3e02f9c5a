import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisIdempotencyStore, TxErrorCode } from '../../src/index.js';
import { eventually } from '../support/fixture.js';

/** A throwaway redis-server this test can stop and start again on the same port. */
async function sparePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

let server: ChildProcess | undefined;
const startRedis = (port: number) => {
  server = spawn(
    'redis-server',
    ['--port', `${port}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
};
const stopRedis = () =>
  new Promise<void>((resolve) => {
    server?.once('exit', () => resolve());
    server?.kill('SIGKILL');
  });

afterAll(async () => {
  await stopRedis();
});

describe('Redis stopped mid-run', () => {
  it('fails closed (or open when configured) while Redis is down, and recovers when it returns', async () => {
    const port = await sparePort();
    startRedis(port);
    const redis = new Redis(`redis://127.0.0.1:${port}`, {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => 50,
    });
    redis.on('error', () => undefined);
    await eventually(async () => (await redis.ping().catch(() => '')) === 'PONG');
    const closed = redisIdempotencyStore(redis, { prefix: 'outage:' });
    const open = redisIdempotencyStore(redis, { prefix: 'outage:', failOpen: true });
    expect((await closed.begin('before', 'f', 10_000)).status).toBe('new');

    await stopRedis();
    await expect(closed.begin('during', 'f', 10_000)).rejects.toMatchObject({
      code: TxErrorCode.StoreUnavailable,
    });
    expect(await open.begin('during', 'f', 10_000)).toEqual({ status: 'new' });

    startRedis(port);
    await eventually(async () => (await redis.ping().catch(() => '')) === 'PONG');
    expect((await closed.begin('after', 'f', 10_000)).status).toBe('new');
    expect((await closed.begin('after', 'f', 10_000)).status).toBe('in_progress');
    redis.disconnect();
  }, 20_000);
});
