import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import fc from 'fast-check';
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ConnectionState, ConnectionStatus } from '../../../src/connection/connectionState.js';
import { type HealthAlert, HealthMonitor } from '../../../src/health/healthMonitor.js';
import { TxError, TxErrorCode, type TxMeta } from '../../../src/index.js';
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
    expect(alerts.map((alert) => (alert.kind === 'tool' ? alert.successRate : alert.kind))).toEqual([
      0, 0.25,
    ]);
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

const lost = new TxError(TxErrorCode.NetworkError, 'Connection closed', { retryable: true, ambiguous: true });
const connection = (state: ConnectionStatus, attempt = state === 'connected' ? 0 : 1): ConnectionState => ({
  state,
  attempt,
  since: 0,
  serverSupportsTx: true,
  ...(state === 'connected' || (state === 'connecting' && attempt === 1) ? {} : { error: lost }),
});

/** A monitor on virtual time, and `at(ms, state)` to tell it of a connection state at that time. */
function connectionMonitor(options: ConstructorParameters<typeof HealthMonitor>[0] = {}) {
  const scheduler = new VirtualTimeScheduler();
  const health = new HealthMonitor({ ...options, scheduler });
  const at = (ms: number, state?: ConnectionState) => {
    scheduler.maxFrames = ms;
    scheduler.schedule(() => {
      if (state !== undefined) health.recordConnection(state);
    }, ms - scheduler.frame);
    scheduler.flush();
  };
  return { health, at };
}

describe('HealthMonitor connection figures', () => {
  it('counts reconnects and the time disconnected, the disconnection under way included', () => {
    const { health, at } = connectionMonitor();
    expect(health.report()).not.toHaveProperty('connection');

    at(0, connection('connecting'));
    at(100, connection('connected'));
    expect(health.report().connection).toEqual({
      state: 'connected',
      since: '1970-01-01T00:00:00.100Z',
      attempt: 0,
      reconnects: 0,
      disconnectedMs: 0,
    });

    at(1_000, connection('reconnecting', 1));
    at(1_200, connection('reconnecting', 2));
    at(1_500);
    expect(health.report().connection).toEqual({
      state: 'reconnecting',
      since: '1970-01-01T00:00:01.000Z', // a second attempt is the same disconnection
      attempt: 2,
      reconnects: 0,
      disconnectedMs: 500,
      errorCode: 'MCP_TX_NETWORK_ERROR',
    });

    at(1_700, connection('connected'));
    at(2_000, connection('connected')); // told again (a replay): not a reconnect
    expect(health.report().connection).toEqual({
      state: 'connected',
      since: '1970-01-01T00:00:01.700Z',
      attempt: 0,
      reconnects: 1,
      disconnectedMs: 700,
    });

    at(3_000, connection('reconnecting'));
    at(3_100, connection('connected'));
    at(4_000, connection('closed', 0));
    at(4_500);
    expect(health.report().connection).toMatchObject({
      state: 'closed',
      reconnects: 2,
      disconnectedMs: 1_300,
    });
    expect(health.report().healthy).toBe(true); // the connection does not change `healthy`
  });

  it('does not count the first connection’s attempts as a disconnection, nor a close before connecting', () => {
    const first = connectionMonitor();
    first.at(0, connection('connecting', 1));
    first.at(400, connection('connecting', 2));
    first.at(900, connection('connected'));
    first.at(1_000);
    expect(first.health.report().connection).toMatchObject({ reconnects: 0, disconnectedMs: 0 });

    const never = connectionMonitor();
    never.at(0, connection('connecting'));
    never.at(300, connection('closed', 3));
    never.at(1_000);
    expect(never.health.report().connection).toEqual({
      state: 'closed',
      since: '1970-01-01T00:00:00.300Z',
      attempt: 3,
      reconnects: 0,
      disconnectedMs: 0,
      errorCode: 'MCP_TX_NETWORK_ERROR',
    });
  });

  it('adds up, over any sequence of states, to the time spent out of `connected` after the first connection (property)', () => {
    const states: ConnectionStatus[] = ['connecting', 'connected', 'reconnecting', 'closed'];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...states), fc.integer({ min: 0, max: 1_000 })), { maxLength: 40 }),
        fc.integer({ min: 0, max: 1_000 }),
        (steps, tail) => {
          const { health, at } = connectionMonitor();
          let now = 0;
          let previous: ConnectionStatus | undefined;
          let connectedOnce = false;
          let reconnects = 0;
          let disconnectedMs = 0;
          for (const [state, gap] of steps) {
            if (connectedOnce && previous !== 'connected') disconnectedMs += gap;
            now += gap;
            at(now, connection(state));
            if (state === 'connected' && previous !== 'connected') {
              if (connectedOnce) reconnects += 1;
              connectedOnce = true;
            }
            previous = state;
          }
          if (connectedOnce && previous !== 'connected') disconnectedMs += tail;
          at(now + tail);
          const report = health.report().connection;
          if (steps.length === 0) expect(report).toBeUndefined();
          else expect(report).toMatchObject({ state: previous, reconnects, disconnectedMs });
        },
      ),
    );
  });

  it('counts mcp_tx.reconnects on its meter', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const { at } = connectionMonitor({ meter: provider.getMeter('test') });
    for (const [ms, state] of [
      [0, 'connected'],
      [10, 'reconnecting'],
      [20, 'connected'],
      [30, 'reconnecting'],
      [40, 'reconnecting'],
      [50, 'connected'],
    ] as const)
      at(ms, connection(state));
    await reader.forceFlush();
    const metric = exporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
      .find((candidate) => candidate.descriptor.name === 'mcp_tx.reconnects');
    expect(metric?.dataPoints[0]?.value).toBe(2);
    await provider.shutdown();
  });
});
