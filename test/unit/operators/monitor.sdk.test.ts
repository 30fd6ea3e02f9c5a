import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { monitor } from '../../../operators/monitor.js';
import { retryWithPolicy } from '../../../operators/retryWithPolicy.js';
import { HealthMonitor } from '../../../src/health/healthMonitor.js';
import { connectFixture, type Fixture, until } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

describe('monitor over a real MCP server', () => {
  it('counts logical calls with their attempts, alerts when a tool degrades, and skips cancelled calls', async () => {
    fixture = await connectFixture();
    const health = new HealthMonitor({ alertThreshold: 0.6, minCalls: 3 });
    const alerts: string[] = [];
    health.alerts$.subscribe((alert) => alerts.push(alert.kind === 'tool' ? alert.tool : alert.kind));
    const quick = { baseDelayMs: 1, maxDelayMs: 2, jitter: false as const };
    await firstValueFrom(
      fixture.tx.attempt$('flaky', { key: 'm', failTimes: 1 }).pipe(retryWithPolicy(quick), monitor(health)),
    );
    for (let index = 0; index < 3; index++) {
      await firstValueFrom(fixture.tx.attempt$('boom', { message: 'down' }).pipe(monitor(health))).catch(
        () => undefined,
      );
    }
    const cancelled = fixture.tx.attempt$('slow', { ms: 5_000 }).pipe(monitor(health)).subscribe();
    await until(() => fixture.seen.some((seen) => seen.tool === 'slow'));
    cancelled.unsubscribe();

    expect(health.health('flaky')).toMatchObject({ calls: 1, successRate: 1, averageAttempts: 2 });
    expect(health.health('boom')).toMatchObject({ calls: 3, failures: 3 });
    expect(health.health('slow')).toBeUndefined();
    expect(alerts).toEqual(['boom']);
  });

  it('records mcp.client.operation.duration when given an OpenTelemetry meter', async () => {
    fixture = await connectFixture();
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const health = new HealthMonitor({ meter: provider.getMeter('test') });
    await firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(monitor(health)));
    await reader.forceFlush();
    const metric = exporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
      .find((candidate) => candidate.descriptor.name === 'mcp.client.operation.duration');
    expect(metric?.descriptor.unit).toBe('s');
    expect(metric?.dataPoints[0]?.attributes).toMatchObject({
      'gen_ai.tool.name': 'echo',
      'mcp.method.name': 'tools/call',
      'gen_ai.operation.name': 'execute_tool',
    });
    await provider.shutdown();
  });
});
