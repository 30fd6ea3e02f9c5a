/**
 * A worker process taking CALLS permits from a shared Redis rate limiter. Prints when it saw each
 * permit (ms) and how late it may have seen one: the worst event-loop delay during the run plus the
 * slowest Redis round trip — the measured clock error of its start times.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { redisRateLimiter } from '../../src/redis.js';

const redis = new Redis(process.env.REDIS_URL as string);
const limiter = redisRateLimiter(redis, {
  key: process.env.LIMIT_KEY as string,
  ratePerSecond: Number(process.env.RATE),
  burst: Number(process.env.BURST),
});
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const starts = await Promise.all(
  Array.from({ length: Number(process.env.CALLS) }, () =>
    firstValueFrom(limiter.acquire()).then(() => Date.now()),
  ),
);
loopDelay.disable();
let slowestRoundTripMs = 0;
for (let ping = 0; ping < 5; ping++) {
  const sent = performance.now();
  await redis.ping();
  slowestRoundTripMs = Math.max(slowestRoundTripMs, performance.now() - sent);
}
console.log(JSON.stringify({ starts, lateByAtMostMs: loopDelay.max / 1e6 + slowestRoundTripMs }));
redis.disconnect();
