import type { Observable } from 'rxjs';

/**
 * Leave to start one call; release it when the call is over. (A rate limiter's permit gives nothing
 * back; a concurrency limit's frees the place.)
 *
 * @example
 * limiter.acquire().subscribe((permit) => run().finally(() => permit.release()));
 */
export interface Permit {
  /** Idempotent: the second call does nothing. */
  release(): void;
}

/**
 * Decides when a call may start. `acquire()` emits one {@link Permit} when the call may go and
 * completes; unsubscribing while queued gives up the place; it errors with `MCP_TX_RATE_LIMITED`
 * when the queue is full. Implementations: {@link tokenBucket}, {@link concurrencyLimit}, and
 * shared ones (Redis) that admit asynchronously.
 *
 * @example
 * limiter.acquire().subscribe((permit) => { start(); onDone(() => permit.release()); });
 */
export interface Limiter {
  /** Emits one permit and completes when the call may start. Cold: each subscription queues anew. */
  acquire(): Observable<Permit>;
  /**
   * Optional fast path: a permit taken now when one is free and nobody waits (the caller releases
   * it), else `undefined` (then `acquire()` queues the call). `throttle` asks it first, so a free
   * permit costs no subscription; a limiter without it (the Redis one) is only asked `acquire()`.
   *
   * @example
   * const permit = limiter.tryAcquire?.();
   * if (permit !== undefined) start(permit);
   * else limiter.acquire().subscribe(start);
   */
  tryAcquire?(): Permit | undefined;
}
