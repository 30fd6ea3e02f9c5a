/**
 * {@link startSessionHttpServer} as a process of its own, for the reconnect tests that kill and
 * restart it on the same port: `PORT`, its txTool store and its effects (`HINCRBY
 * <PREFIX>charges <id> 1`, committed with the key) in Redis at `REDIS_URL` under `PREFIX`, so that
 * they outlive the process. Prints `listening <port>` once it listens.
 */
import { Redis } from 'ioredis';
import { redisIdempotencyStore } from '../../src/redis.js';
import { redisEffectCounter, startSessionHttpServer } from './sessionHttpServer.js';

const prefix = process.env.PREFIX as string;
const redis = new Redis(process.env.REDIS_URL as string);
const server = await startSessionHttpServer({
  port: Number(process.env.PORT),
  store: redisIdempotencyStore(redis, { prefix: `${prefix}idem:` }),
  count: redisEffectCounter(`${prefix}charges`),
});
process.stdout.write(`listening ${server.port}\n`);
