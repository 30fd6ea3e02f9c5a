/**
 * vitest global setup: makes sure a Redis server answers for the Redis tests and passes its address
 * in REDIS_URL. Uses REDIS_URL when set, else 127.0.0.1:6379 when it answers, else starts a
 * throwaway `redis-server` on a spare port (no persistence) and stops it after the run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

async function answers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

let started: ChildProcess | undefined;

export default async function setup(): Promise<() => void> {
  const stop = () => {
    started?.kill();
  };
  if (process.env.REDIS_URL) return stop;
  if (await answers('redis://127.0.0.1:6379')) {
    process.env.REDIS_URL = 'redis://127.0.0.1:6379';
    return stop;
  }
  const port = await sparePort();
  started = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  started.on('error', () => undefined);
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; tries < 50 && !(await answers(url)); tries++)
    await new Promise((r) => setTimeout(r, 100));
  if (!(await answers(url))) {
    throw new Error(
      'No Redis server: set REDIS_URL, start redis-server on 127.0.0.1:6379, or install redis-server',
    );
  }
  process.env.REDIS_URL = url;
  return stop;
}
