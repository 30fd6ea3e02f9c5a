import { SpanStatusCode } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CircuitBreaker,
  concurrencyLimit,
  HealthMonitor,
  MemoryEventStore,
  memoryIdempotencyStore,
  type TxConfig,
  TxErrorCode,
} from '../../../src/index.js';
import { connectFixture, expectFailure, type Fixture } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

const quickRetry = { baseDelayMs: 1, maxDelayMs: 4, jitter: false as const };
const connect = (config: TxConfig = {}) => connectFixture({ config: { retry: quickRetry, ...config } });

describe('the default pipeline of call$', () => {
  it('retries a transient failure with the MCP-Tx defaults (3 attempts)', async () => {
    fixture = await connect();
    const result = await fixture.tx.call('flaky', { key: 'a', failTimes: 2 });
    expect(result.meta.attempts).toBe(3);
    expect(fixture.effects.get('a')).toBe(3);
    const error = await expectFailure(fixture.tx.call('flaky', { key: 'b', failTimes: 9 }));
    expect(error?.meta?.attempts).toBe(3);
  });

  it('counts every attempt in the breaker, since it sits inside the retry', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 60_000 });
    fixture = await connect({ breaker });
    await expectFailure(fixture.tx.call('flaky', { key: 'c', failTimes: 9 }));
    expect(breaker.state).toBe('open');
    const refused = await expectFailure(fixture.tx.call('echo', {}));
    expect(refused?.code).toBe(TxErrorCode.CircuitOpen);
    expect(fixture.seen).toHaveLength(3);
    expect((await fixture.tx.call('echo', { value: 1 }, { breaker: false })).data).toEqual({ value: 1 });
  });

  it('runs a keyed call and its retries once; the repeat is a duplicate', async () => {
    fixture = await connect();
    const first = await fixture.tx.call('flaky', { key: 'd', failTimes: 1 }, { idempotencyKey: 'order-1' });
    const again = await fixture.tx.call('flaky', { key: 'd', failTimes: 1 }, { idempotencyKey: 'order-1' });
    expect(first.meta).toMatchObject({ attempts: 2, duplicate: false });
    expect(again.meta).toMatchObject({ attempts: 0, duplicate: true });
    expect(fixture.effects.get('d')).toBe(2);
    const conflict = await expectFailure(
      fixture.tx.call('flaky', { key: 'other', failTimes: 0 }, { idempotencyKey: 'order-1' }),
    );
    expect(conflict?.code).toBe(TxErrorCode.IdempotencyConflict);
  });

  it('makes one span per logical call, with an event per retry', async () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer(
      't',
    );
    fixture = await connect({ trace: { tracer } });
    await fixture.tx.call('flaky', { key: 'e', failTimes: 2 });
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.events.filter((event) => event.name === 'retry')).toHaveLength(2);
    expect(spans[0]?.status.code).toBe(SpanStatusCode.UNSET);
    expect(new Set(fixture.seen.map((seen) => seen.meta?.traceparent)).size).toBe(1);
  });

  it('throttles every call with the configured limiter', async () => {
    let running = 0;
    let peak = 0;
    fixture = await connectFixture({
      config: { limiter: concurrencyLimit({ maxConcurrent: 1 }) },
      register: (server) =>
        server.registerTool('busy', { inputSchema: { n: z.number() } }, async () => {
          running += 1;
          peak = Math.max(peak, running);
          await new Promise((resolve) => setTimeout(resolve, 3));
          running -= 1;
          return { content: [{ type: 'text', text: 'ok' }] };
        }),
    });
    const results = await lastValueFrom(
      from([1, 2, 3, 4]).pipe(
        mergeMap((n) => fixture.tx.call$('busy', { n })),
        toArray(),
      ),
    );
    expect(results).toHaveLength(4);
    expect(peak).toBe(1);
  });

  it('switches each operator off per tool and per call', async () => {
    const store = memoryIdempotencyStore();
    fixture = await connect({ dedupe: { store } });
    fixture.tx.tool('flaky', { retry: false });
    expect((await expectFailure(fixture.tx.call('flaky', { key: 'f', failTimes: 1 })))?.meta?.attempts).toBe(
      1,
    );
    expect(
      (await fixture.tx.call('flaky', { key: 'g', failTimes: 1 }, { retry: { maxAttempts: 2 } })).meta
        .attempts,
    ).toBe(2);

    await fixture.tx.call('counter', { key: 'h' }, { idempotencyKey: 'k' });
    await fixture.tx.call('counter', { key: 'h' }, { idempotencyKey: 'k', dedupe: false });
    expect(fixture.effects.get('h')).toBe(2);
    fixture.tx.tool('counter', { dedupe: false });
    await fixture.tx.call('counter', { key: 'h' }, { idempotencyKey: 'k' });
    expect(fixture.effects.get('h')).toBe(3);
  });

  it('reports every logical call to the configured health monitor, unless switched off', async () => {
    const health = new HealthMonitor();
    fixture = await connect({ monitor: health });
    await fixture.tx.call('flaky', { key: 'm', failTimes: 1 });
    await fixture.tx.call('echo', {}, { monitor: false });
    expect(health.health('flaky')).toMatchObject({ calls: 1, averageAttempts: 2 });
    expect(health.health('echo')).toBeUndefined();
  });

  it('rebuilds the operators of a tool whose policy changes after calls were made', async () => {
    const health = new HealthMonitor();
    fixture = await connect({ monitor: health });
    await fixture.tx.call('echo', {});
    fixture.tx.tool('echo', { monitor: false });
    await fixture.tx.call('echo', {});
    expect(health.health('echo')).toMatchObject({ calls: 1 });
    fixture.tx.tool('echo', {});
    await fixture.tx.call('echo', {});
    expect(health.health('echo')).toMatchObject({ calls: 2 });
  });

  it('lets the monitor watch the default dedupe store, bounded by dedupe.maxBytes', async () => {
    const health = new HealthMonitor();
    const alerts: string[] = [];
    health.alerts$.subscribe((alert) => alerts.push(alert.kind));
    fixture = await connect({ monitor: health, dedupe: { maxBytes: 65_536, windowMs: 60_000 } });
    await fixture.tx.call('echo', { value: 'a' }, { idempotencyKey: 'k-a' });
    expect(health.report()).toMatchObject({
      healthy: true,
      idempotency: { entries: 1, evictedEarly: 0, maxBytes: 65_536, windowMs: 60_000 },
    });
    const bulky = 'x'.repeat(4_000); // ~8 KB estimated a key: 64 KiB holds fewer than 10
    for (let index = 0; index < 12; index++)
      await fixture.tx.call('echo', { value: bulky }, { idempotencyKey: `k-${index}` });
    expect(alerts).toEqual(['dedupe_window_shortened']);
    expect(health.report()).toMatchObject({ healthy: false, idempotency: { maxBytes: 65_536 } });
    expect(health.report().idempotency?.evictedEarly).toBeGreaterThan(0);
  });

  it('logs every logical call to the configured event store, unless switched off', async () => {
    const events = new MemoryEventStore();
    fixture = await connect({ events });
    await fixture.tx.call('flaky', { key: 'ev', failTimes: 1 });
    await fixture.tx.call('echo', {}, { record: false });
    const log = await lastValueFrom(events.read$().pipe(toArray()));
    expect(log.map((event) => `${event.type}:${event.tool}`)).toEqual([
      'ToolCallRequested:flaky',
      'ToolCallCompleted:flaky',
    ]);
    expect(log[1]?.data).toMatchObject({ attempts: 2 });
  });

  it('turns dedupe off entirely with dedupe: false in the config', async () => {
    fixture = await connect({ dedupe: false });
    await fixture.tx.call('counter', { key: 'i' }, { idempotencyKey: 'k' });
    await fixture.tx.call('counter', { key: 'i' }, { idempotencyKey: 'k' });
    expect(fixture.effects.get('i')).toBe(2);
  });

  it('rejects bad pipeline config, naming the field', async () => {
    fixture = await connect();
    expect(() => fixture.tx.tool('echo', { limiter: {} as never })).toThrowError(
      expect.objectContaining({ field: 'tools.echo.limiter' }),
    );
    const error = await expectFailure(fixture.tx.call('echo', {}, { dedupe: true as never }));
    expect(error).toMatchObject({ code: TxErrorCode.Validation, field: 'options.dedupe' });
  });
});
