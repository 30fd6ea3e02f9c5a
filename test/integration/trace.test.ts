import { context, trace as otelTrace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { firstValueFrom, retry, timer } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trace } from '../../operators/trace.js';
import { type TxError, TxErrorCode } from '../../src/index.js';
import { connectFixture, type Fixture, until } from '../support/fixture.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('test');
const contextManager = new AsyncLocalStorageContextManager();

let fixture: Fixture;
beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  context.disable();
});
afterEach(async () => {
  exporter.reset();
  await fixture?.close();
});

const traceparentOf = (index: number) => fixture.seen[index]?.meta?.traceparent as string | undefined;

describe('trace', () => {
  it('makes one CLIENT span named per the MCP conventions, with the mcp_tx attributes', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('echo', {}, { idempotencyKey: 'order-7', transactionId: 'wf-1' });
    await firstValueFrom(call.pipe(trace({ tracer })));
    const [span, ...others] = exporter.getFinishedSpans();
    expect(others).toHaveLength(0);
    expect(span?.name).toBe('tools/call echo');
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'gen_ai.operation.name': 'execute_tool',
      'mcp_tx.request_id': call.request.requestId,
      'mcp_tx.idempotency_key': 'order-7',
      'mcp_tx.transaction_id': 'wf-1',
      'mcp_tx.attempts': 1,
      'mcp_tx.duplicate': false,
      'mcp_tx.status': 'completed',
    });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('sends a W3C traceparent whose trace id is the span trace id and parent id the span id', async () => {
    fixture = await connectFixture();
    await firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(trace({ tracer })));
    const span = exporter.getFinishedSpans()[0];
    const { traceId, spanId } = span?.spanContext() ?? {};
    expect(traceparentOf(0)).toBe(`00-${traceId}-${spanId}-01`);
  });

  it('records a retry event per retry and the attempts on one span per logical call', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('flaky', { key: 'r', failTimes: 2 });
    const retried = call.pipe(
      retry({
        count: 2,
        delay: (error: TxError, attempt) => {
          call.state.notifyRetry({ attempt, delayMs: 0, error });
          return timer(0);
        },
      }),
    );
    const result = await firstValueFrom(retried.pipe(trace({ tracer })));
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.events.map((event) => event.name)).toEqual(['retry', 'retry']);
    expect(spans[0]?.status.code).toBe(SpanStatusCode.UNSET);
    expect(spans[0]?.events[0]?.attributes).toMatchObject({
      'mcp_tx.attempt': 1,
      'error.type': TxErrorCode.ToolError,
    });
    expect(spans[0]?.attributes['mcp_tx.attempts']).toBe(3);
    expect(result.meta.attempts).toBe(3);
    expect(new Set([0, 1, 2].map(traceparentOf)).size).toBe(1);
  });

  it('marks a failure with ERROR status, error.type and the exception', async () => {
    fixture = await connectFixture();
    await firstValueFrom(fixture.tx.attempt$('boom', { message: 'no stock' }).pipe(trace({ tracer }))).catch(
      () => undefined,
    );
    const span = exporter.getFinishedSpans()[0];
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no stock' });
    expect(span?.attributes['error.type']).toBe(TxErrorCode.ToolError);
    expect(span?.attributes['mcp_tx.status']).toBe('failed');
    expect(span?.events.map((event) => event.name)).toContain('exception');
  });

  it('ends the span as cancelled when the caller unsubscribes', async () => {
    fixture = await connectFixture();
    const subscription = fixture.tx.attempt$('slow', { ms: 5_000 }).pipe(trace({ tracer })).subscribe();
    await until(() => fixture.seen.length === 1);
    subscription.unsubscribe();
    const span = exporter.getFinishedSpans()[0];
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe(TxErrorCode.Cancelled);
    expect(span?.attributes['mcp_tx.status']).toBe('cancelled');
  });

  it('is a child of the span active when it is subscribed', async () => {
    fixture = await connectFixture();
    const parent = tracer.startSpan('agent step');
    await context.with(otelTrace.setSpan(context.active(), parent), () =>
      firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(trace({ tracer }))),
    );
    parent.end();
    const child = exporter.getFinishedSpans().find((span) => span.name === 'tools/call echo');
    expect(child?.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(child?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  });

  it('rejects bad options, naming the field', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    expect(() => trace({ tracer: {} as any })).toThrowError(
      expect.objectContaining({ field: 'options.tracer' }),
    );
  });
});
