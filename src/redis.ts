/**
 * The Redis-backed parts, shared by every process on one Redis: the idempotency store (with
 * effects committed atomically), the rate limiter, the circuit breaker and the event store. Each
 * takes an `ioredis` client (an optional peer: `npm i ioredis`).
 *
 * @module mcp-tx/redis
 */
export { type RedisBreakerOptions, RedisCircuitBreaker } from './breaker/redisCircuitBreaker.js';
export { RedisEventStore, type RedisEventStoreOptions } from './events/redisEventStore.js';
export { type RedisEffect, type RedisStoreOptions, redisIdempotencyStore } from './idempotency/redisStore.js';
export { type RedisRateLimiterOptions, redisRateLimiter } from './limiter/redisRateLimiter.js';
export { RedisTaskStore, type RedisTaskStoreOptions, redisTaskStore } from './tasks/redisTaskStore.js';
