import { isoTime } from '../core/time.js';
import {
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  type IdempotencyStore,
  type IdempotencyStoreStats,
} from '../idempotency/store.js';

/**
 * Emitted on a `HealthMonitor`'s `alerts$` when the idempotency store it watches
 * (`watchIdempotencyStore`) evicted keys before their window ended: a retry with one of those keys
 * would run the call again. `evictedEarly` is the store's count so far, `shortestKeptMs` the
 * shortest time such a key had been kept, `windowMs` the store's window; `at`: ISO 8601.
 *
 * @example
 * health.alerts$.subscribe((alert) => {
 *   if (alert.kind === 'dedupe_window_shortened')
 *     console.warn(`dedupe window shortened to ${alert.shortestKeptMs} ms of ${alert.windowMs}`);
 * });
 */
export interface DedupeWindowAlert {
  readonly kind: 'dedupe_window_shortened';
  readonly evictedEarly: number;
  readonly shortestKeptMs?: number;
  readonly windowMs: number;
  readonly at: string;
}

/**
 * Watches one idempotency store's `stats()` for early evictions: the window is shortened from the
 * moment a new one is seen until the store's `windowMs` has passed without another (every key stored
 * since was then kept its whole window). One alert per shortening, none while it lasts.
 *
 * @example
 * const watch = new StoreWatch(store);
 * const { stats, alert } = watch.check(scheduler.now());
 * watch.shortened(scheduler.now()); // true for windowMs after the last early eviction seen
 */
export class StoreWatch {
  private readonly windowMs: number;
  private evictedEarly = 0;
  /** When an early eviction was last seen, on the monitor's clock. */
  private lastSeenAt: number | undefined;

  constructor(readonly store: IdempotencyStore) {
    this.windowMs = store.windowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
  }

  /** The store's stats at `now` (none if it has no `stats()` or it throws), and an alert if its window was just shortened. */
  check(now: number): { stats?: IdempotencyStoreStats; alert?: DedupeWindowAlert } {
    const stats = this.readStats();
    if (stats === undefined || stats.evictedEarly <= this.evictedEarly) return { stats };
    const alerting = this.shortened(now);
    this.evictedEarly = stats.evictedEarly;
    this.lastSeenAt = now;
    if (alerting) return { stats };
    const { evictedEarly, shortestKeptMs } = stats;
    const alert: DedupeWindowAlert = {
      kind: 'dedupe_window_shortened',
      evictedEarly,
      ...(shortestKeptMs === undefined ? {} : { shortestKeptMs }),
      windowMs: this.windowMs,
      at: isoTime(now),
    };
    return { stats, alert };
  }

  /** Whether an early eviction was seen less than the store's window before `now`. */
  shortened(now: number): boolean {
    return this.lastSeenAt !== undefined && now - this.lastSeenAt < this.windowMs;
  }

  private readStats(): IdempotencyStoreStats | undefined {
    try {
      return this.store.stats?.();
    } catch {
      return undefined; // a store whose stats fail says nothing; the calls go on
    }
  }
}
