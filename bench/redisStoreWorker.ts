/** One process of the Redis store benchmark: CALLS new keys, each a begin then a complete (2 round trips), from START_AT. */
import { Redis } from 'ioredis';
import { redisIdempotencyStore } from 'mcp-tx/redis';

const calls = Number(process.env.CALLS);
const inFlight = 32;
const redis = new Redis(process.env.REDIS_URL as string);
const store = redisIdempotencyStore(redis, { prefix: process.env.PREFIX as string });
const record = { kind: 'result' as const, result: { content: [{ type: 'text' as const, text: 'ok' }] } };
let next = 0;
const worker = async () => {
  while (next < calls) {
    const key = `k${process.pid}-${next++}`;
    await store.begin(key, 'f', 60_000);
    await store.complete(key, 'f', record, 60_000);
  }
};
// Every process starts at the same moment (START_AT), once all of them are up.
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(process.env.START_AT) - Date.now())));
await Promise.all(Array.from({ length: inFlight }, worker));
console.log(JSON.stringify({ calls, endedAt: Date.now() }));
redis.disconnect();
