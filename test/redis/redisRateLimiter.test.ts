import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { redisRateLimiter, TxErrorCode } from '../../src/index.js';
import { redisUrl, testRedis, unreachableRedis } from '../support/redis.js';

const run = promisify(execFile);
const worker = fileURLToPath(new URL('./limiterWorker.ts', import.meta.url));
const { prefix } = testRedis();

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
        const windowSeconds = ((starts[last] as number) - (starts[first] as number)) / 1_000;
        // + 1: a worker reads its clock a little after Redis granted the start (more on a busy machine);
        // a budget that was not shared would overshoot by far more (4 processes: 4 × burst at once)
        expect(last - first + 1).toBeLessThanOrEqual(burst + rate * windowSeconds + 1);
      }
    }
  }, 60_000);

  it('fails with MCP_TX_STORE_UNAVAILABLE when Redis cannot be reached', async () => {
    const down = unreachableRedis();
    const limiter = redisRateLimiter(down, { key: `${prefix}down`, ratePerSecond: 1, burst: 1 });
    await expect(firstValueFrom(limiter.acquire())).rejects.toMatchObject({
      code: TxErrorCode.StoreUnavailable,
    });
    down.disconnect();
  });
});
