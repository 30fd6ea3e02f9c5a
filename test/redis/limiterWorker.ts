/** A worker process taking CALLS permits from a shared Redis rate limiter; prints their start times (ms). */
import { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { redisRateLimiter } from '../../src/redis.js';

const redis = new Redis(process.env.REDIS_URL as string);
const limiter = redisRateLimiter(redis, {
  key: process.env.LIMIT_KEY as string,
  ratePerSecond: Number(process.env.RATE),
  burst: Number(process.env.BURST),
});
const starts = await Promise.all(
  Array.from({ length: Number(process.env.CALLS) }, () =>
    firstValueFrom(limiter.acquire()).then(() => Date.now()),
  ),
);
console.log(JSON.stringify(starts));
redis.disconnect();
