import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { type HealthAlert, HealthMonitor } from '../../../src/health/healthMonitor.js';
import { memoryIdempotencyStore } from '../../../src/idempotency/memoryStore.js';
import type { IdempotencyRecord, IdempotencyStore } from '../../../src/idempotency/store.js';
import { okResult } from '../../support/virtualCall.js';

const WINDOW_MS = 60_000;
const record: IdempotencyRecord = { kind: 'result', result: { content: [{ type: 'text', text: 'ok' }] } };

/** A monitor watching a 64 KiB memory store, both on one virtual clock; `at(ms, keys)` completes keys then. */
function watchedStore() {
  const scheduler = new VirtualTimeScheduler();
  const store = memoryIdempotencyStore({
    windowMs: WINDOW_MS,
    maxBytes: 64 * 1024,
    clock: () => scheduler.now(),
  });
  const health = new HealthMonitor({ scheduler });
  health.watchIdempotencyStore(store);
  const alerts: HealthAlert[] = [];
  health.alerts$.subscribe((alert) => alerts.push(alert));
  let next = 0;
  const at = (ms: number, keys = 0) => {
    scheduler.maxFrames = ms;
    scheduler.schedule(() => {
      for (let index = 0; index < keys; index++) void store.complete(`k-${next++}`, 'f', record, WINDOW_MS);
    }, ms - scheduler.frame);
    scheduler.flush();
  };
  return { store, health, alerts, at };
}

describe('HealthMonitor watching an idempotency store', () => {
  it('reports the store’s stats, healthy while no key left before its window ended', () => {
    const { store, health, alerts, at } = watchedStore();
    at(1_000, 10);
    expect(health.report().idempotency).toEqual(store.stats());
    expect(health.report().idempotency).toMatchObject({ entries: 10, evictedEarly: 0, maxBytes: 65_536 });
    expect(health.report().healthy).toBe(true);
    expect(alerts).toEqual([]);
  });

  it('alerts once when the window is shortened, unhealthy until a window passes without another', () => {
    const { store, health, alerts, at } = watchedStore();
    at(1_000, 500); // far over 64 KiB: early evictions
    const evicted = store.stats().evictedEarly;
    expect(evicted).toBeGreaterThan(0);
    health.record({ ...okResult().meta, tool: 'search' }); // a call's outcome checks the store
    expect(alerts).toEqual([
      {
        kind: 'dedupe_window_shortened',
        evictedEarly: evicted,
        shortestKeptMs: 0,
        windowMs: WINDOW_MS,
        at: '1970-01-01T00:00:01.000Z',
      },
    ]);
    expect(health.report()).toMatchObject({ healthy: false, idempotency: { evictedEarly: evicted } });

    at(30_000, 100); // more early evictions while shortened: no second alert, the wait starts again
    expect(health.report().healthy).toBe(false);
    at(30_000 + WINDOW_MS - 1);
    expect(health.report().healthy).toBe(false);
    at(30_000 + WINDOW_MS);
    expect(health.report().healthy).toBe(true);
    expect(alerts).toHaveLength(1);

    at(200_000, 200); // shortened again after recovering: a new alert
    expect(health.report().healthy).toBe(false);
    expect(alerts).toHaveLength(2);
    expect(alerts[1]).toMatchObject({ kind: 'dedupe_window_shortened', at: '1970-01-01T00:03:20.000Z' });
  });

  it('reports nothing of a store without stats, nor of one whose stats throw', () => {
    const health = new HealthMonitor();
    const plain: IdempotencyStore = {
      begin: async () => ({ status: 'new' }),
      complete: async () => undefined,
      release: async () => undefined,
    };
    health.watchIdempotencyStore(plain);
    expect(health.report()).not.toHaveProperty('idempotency');
    health.watchIdempotencyStore({
      ...plain,
      stats: () => {
        throw new Error('stats down');
      },
    });
    expect(health.report()).toMatchObject({ healthy: true });
    expect(health.report()).not.toHaveProperty('idempotency');
  });
});
