import fc from 'fast-check';
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { type HealthAlert, HealthMonitor } from '../../../src/health/healthMonitor.js';
import type { TxMeta } from '../../../src/index.js';
import { okResult } from '../../support/virtualCall.js';

const outcome = (ok: boolean, extra: Partial<TxMeta> = {}): TxMeta => ({
  ...okResult().meta,
  tool: 'search',
  status: ok ? 'completed' : 'failed',
  ...(ok ? {} : { errorCode: 'MCP_TX_TOOL_ERROR' }),
  ...extra,
});

describe('HealthMonitor', () => {
  it('summarizes success rate, attempts, duplicates and latency percentiles per tool', () => {
    const health = new HealthMonitor();
    for (const [index, durationMs] of [10, 20, 30, 40].entries()) {
      health.record(outcome(index !== 3, { durationMs, attempts: index + 1, duplicate: index === 0 }));
    }
    expect(health.health('search')).toEqual({
      tool: 'search',
      calls: 4,
      successes: 3,
      failures: 1,
      successRate: 0.75,
      averageAttempts: 2.5,
      duplicateRate: 0.25,
      latencyMs: { p50: 20, p95: 40, p99: 40 },
      totalCalls: 4,
    });
    expect(health.health('other')).toBeUndefined();
    expect(health.report()).toMatchObject({ totals: { calls: 4, successRate: 0.75, averageAttempts: 2.5 } });
  });

  it('keeps only the last `window` calls per tool', () => {
    const health = new HealthMonitor({ window: 3 });
    for (const ok of [false, false, true, true, true]) health.record(outcome(ok));
    expect(health.health('search')).toMatchObject({ calls: 3, successRate: 1, totalCalls: 5 });
  });

  it('keeps figures for at most maxTools tools, forgetting the least recently recorded', () => {
    const health = new HealthMonitor({ maxTools: 2 });
    for (const tool of ['a', 'b', 'a', 'c']) health.record(outcome(true, { tool }));
    expect(health.report().tools.map((tool) => tool.tool)).toEqual(['a', 'c']);
    expect(health.health('a')).toMatchObject({ calls: 2 });
    expect(health.health('b')).toBeUndefined();

    const flooded = new HealthMonitor();
    for (let index = 0; index < 5_000; index++) flooded.record(outcome(false, { tool: `made_up_${index}` }));
    expect(flooded.report().tools).toHaveLength(1_000);
    expect(flooded.health('made_up_4999')).toBeDefined();
  });

  it('alerts once per crossing under the threshold, after minCalls, and again after recovering', () => {
    const health = new HealthMonitor({ alertThreshold: 0.5, window: 4, minCalls: 2 });
    const alerts: HealthAlert[] = [];
    health.alerts$.subscribe((alert) => alerts.push(alert));
    const sequence = [false, false, false, false, true, true, true, false, false, false];
    for (const ok of sequence) health.record(outcome(ok));
    expect(alerts.map((alert) => alert.successRate)).toEqual([0, 0.25]);
    expect(health.report().healthy).toBe(false);
  });

  it('stamps alerts and reports with its scheduler’s clock', () => {
    const scheduler = new VirtualTimeScheduler();
    const health = new HealthMonitor({ alertThreshold: 0.5, minCalls: 1, scheduler });
    const alerts: HealthAlert[] = [];
    health.alerts$.subscribe((alert) => alerts.push(alert));
    scheduler.schedule(() => health.record(outcome(false)), 1_500);
    scheduler.flush();
    expect(alerts.map((alert) => alert.at)).toEqual(['1970-01-01T00:00:01.500Z']);
    expect(health.report().generatedAt).toBe('1970-01-01T00:00:01.500Z');
  });

  it('never alerts twice in a row without a recovery in between (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { maxLength: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (oks, threshold) => {
          const health = new HealthMonitor({ alertThreshold: threshold, window: 10, minCalls: 3 });
          const events: string[] = [];
          health.alerts$.subscribe(() => events.push('alert'));
          for (const ok of oks) {
            health.record(outcome(ok));
            const rate = health.health('search')?.successRate ?? 1;
            if (rate >= threshold) events.push('ok');
          }
          const alertsOnly = events.filter(
            (event, index) => event === 'alert' && events[index - 1] === 'alert',
          );
          expect(alertsOnly).toHaveLength(0);
        },
      ),
    );
  });

  it('rejects bad options, naming the field', () => {
    expect(() => new HealthMonitor({ alertThreshold: 2 })).toThrowError(
      expect.objectContaining({ field: 'options.alertThreshold' }),
    );
    expect(() => new HealthMonitor({ maxTools: 0 })).toThrowError(
      'Invalid options.maxTools: must be at least 1',
    );
  });
});
