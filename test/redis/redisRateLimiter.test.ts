import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/ids.js';
import { redisRateLimiter, TxErrorCode } from '../../src/index.js';

const run = promisify(execFile);
const worker = fileURLToPath(new URL('./limiterWorker.ts', import.meta.url));
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `mcp-tx-test:${newRequestId()}:`;
const redis = new Redis(redisUrl);

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe('redisRateLimiter on a real Redis', () => {
  it('keeps 4 processes together under one budget: at most burst + rate·T starts in any window T', async () => {
    const [rate, burst, callsEach] = [40, 4, 12];
    const env = {
      ...process.env,
      REDIS_URL: redisUrl,
      LIMIT_KEY: `${prefix}shared`,
      RATE: `${rate}`,
      BURST: `${burst}`,
      CALLS: `${callsEach}`,
    };
    const outputs = await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ['--import', 'tsx', worker], { env, timeout: 60_000 }),
      ),
    );
    const starts = outputs
      .flatMap(({ stdout }) => JSON.parse(stdout.trim()) as number[])
      .sort((a, b) => a - b);
    expect(starts).toHaveLength(4 * callsEach);
    for (let first = 0; first < starts.length; first++) {
      for (let last = first; last < starts.length; last++) {
        // 10 ms for the time between Redis granting a start and a worker reading its clock
        const windowSeconds = ((starts[last] as number) - (starts[first] as number) + 10) / 1_000;
        expect(last - first + 1).toBeLessThanOrEqual(burst + rate * windowSeconds);
      }
    }
  }, 60_000);

  it('fails with MCP_TX_STORE_UNAVAILABLE when Redis cannot be reached', async () => {
    const down = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    down.on('error', () => undefined);
    const limiter = redisRateLimiter(down, { key: `${prefix}down`, ratePerSecond: 1, burst: 1 });
    await expect(firstValueFrom(limiter.acquire())).rejects.toMatchObject({
      code: TxErrorCode.StoreUnavailable,
    });
    down.disconnect();
  });
});
