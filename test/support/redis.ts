import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { newRequestId } from '../../src/core/ids.js';

/** The Redis the tests use (the global setup made sure one answers there). */
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A connection for one test file and a key prefix of its own; the file's keys are deleted and the
 * connection closed after its tests.
 */
export function testRedis(): { redis: Redis; prefix: string } {
  const redis = new Redis(redisUrl);
  const prefix = `mcp-tx-test:${newRequestId()}:`;
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  return { redis, prefix };
}

/** A client for a Redis that is not there: every command fails at once. Disconnect it after use. */
export function unreachableRedis(): Redis {
  const down = new Redis('redis://127.0.0.1:1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  down.on('error', () => undefined);
  return down;
}
