import {
  context,
  createTraceState,
  trace as otelTrace,
  propagation,
  SpanKind,
  SpanStatusCode,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { firstValueFrom, retry, timer } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trace } from '../../../operators/trace.js';
import { type TxError, TxErrorCode } from '../../../src/core/errors.js';
import { connectFixture, type Fixture, until } from '../../support/fixture.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('test');
const contextManager = new AsyncLocalStorageContextManager();
/** W3C Trace Context version 00, checked independently of the code under test. */
const W3C_TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

let fixture: Fixture;
beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  context.disable();
});
afterEach(async () => {
  propagation.disable();
  exporter.reset();
  await fixture?.close();
});

const metaSeen = (index: number) => fixture.seen[index]?.meta ?? {};
const onlySpan = () => {
  const spans = exporter.getFinishedSpans();
  expect(spans).toHaveLength(1);
  return spans[0];
};
/** A remote parent with a `tracestate`, as a server or an agent framework would hand over. */
const remoteParent = () =>
  otelTrace.setSpanContext(context.active(), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: 1,
    isRemote: true,
    traceState: createTraceState('vendor=abc,other=1'),
  });

describe('trace over the real SDK', () => {
  it('makes one CLIENT span named per the MCP conventions, with the mcp_tx attributes', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('echo', {}, { idempotencyKey: 'order-7', transactionId: 'wf-1' });
    await firstValueFrom(call.pipe(trace({ tracer })));
    const span = onlySpan();
    expect(span?.name).toBe('tools/call echo');
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.ended).toBe(true);
    expect(span?.attributes).toEqual({
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
    expect(call.state.requestMeta).toEqual({});
  });

  it('sends a W3C traceparent whose trace id is the span trace id and parent id the span id', async () => {
    fixture = await connectFixture();
    await firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(trace({ tracer })));
    const { traceId, spanId } = onlySpan()?.spanContext() ?? {};
    const traceparent = metaSeen(0).traceparent;
    expect(traceparent).toMatch(W3C_TRACEPARENT);
    expect(traceparent).toBe(`00-${traceId}-${spanId}-01`);
    expect(metaSeen(0)).not.toHaveProperty('tracestate');
  });

  it('sends the traceparent to a plain MCP server too', async () => {
    fixture = await connectFixture({ serverTx: false });
    await firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(trace({ tracer })));
    expect(metaSeen(0)).not.toHaveProperty('mcp_tx');
    expect(metaSeen(0).traceparent).toMatch(W3C_TRACEPARENT);
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
    const span = onlySpan();
    expect(span?.events.map((event) => event.name)).toEqual(['retry', 'retry']);
    expect(span?.events.map((event) => event.attributes)).toEqual(
      [1, 2].map((attempt) => ({
        'mcp_tx.attempt': attempt,
        'mcp_tx.retry_delay_ms': 0,
        'error.type': TxErrorCode.ToolError,
      })),
    );
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes['mcp_tx.attempts']).toBe(3);
    expect(result.meta.attempts).toBe(3);
    const traceparents = [0, 1, 2].map((index) => metaSeen(index).traceparent);
    expect(new Set(traceparents)).toEqual(
      new Set([`00-${span?.spanContext().traceId}-${span?.spanContext().spanId}-01`]),
    );
  });

  it('marks a failure with ERROR status, error.type and the exception', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('boom', { message: 'no stock' });
    await expect(firstValueFrom(call.pipe(trace({ tracer })))).rejects.toMatchObject({
      code: TxErrorCode.ToolError,
    });
    const span = onlySpan();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no stock' });
    expect(span?.attributes).toMatchObject({
      'error.type': TxErrorCode.ToolError,
      'mcp_tx.status': 'failed',
      'mcp_tx.attempts': 1,
    });
    const exception = span?.events.find((event) => event.name === 'exception');
    expect(exception?.attributes).toMatchObject({
      'exception.type': 'TxError',
      'exception.message': 'no stock',
    });
    expect(call.state.requestMeta).toEqual({});
  });

  it('ends the span as cancelled when the caller unsubscribes', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('slow', { ms: 5_000 });
    const subscription = call.pipe(trace({ tracer })).subscribe();
    await until(() => fixture.seen.length === 1);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    subscription.unsubscribe();
    const span = onlySpan();
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toMatchObject({
      'error.type': TxErrorCode.Cancelled,
      'mcp_tx.status': 'cancelled',
      'mcp_tx.attempts': 1,
    });
    expect(span?.events).toEqual([]);
    expect(call.state.requestMeta).toEqual({});
    await until(() => fixture.aborted.includes('slow'));
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

  it('carries the parent trace state as tracestate, formatting it itself', async () => {
    fixture = await connectFixture();
    await context.with(remoteParent(), () =>
      firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(trace({ tracer }))),
    );
    const span = onlySpan();
    expect(span?.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(span?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(metaSeen(0)).toMatchObject({
      traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4736-${span?.spanContext().spanId}-01`,
      tracestate: 'vendor=abc,other=1',
    });
  });

  it('sends what the registered W3C propagator writes, the same trace context', async () => {
    fixture = await connectFixture();
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    await context.with(remoteParent(), () =>
      firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(trace({ tracer }))),
    );
    const spanId = onlySpan()?.spanContext().spanId;
    expect(metaSeen(0)).toMatchObject({
      traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4736-${spanId}-01`,
      tracestate: 'vendor=abc,other=1',
    });
  });

  it('records the arguments, secrets redacted, only when asked', async () => {
    fixture = await connectFixture();
    const args = { value: { city: 'Lyon', password: 'hunter2' } };
    await firstValueFrom(fixture.tx.attempt$('echo', args).pipe(trace({ tracer })));
    await firstValueFrom(fixture.tx.attempt$('echo', args).pipe(trace({ tracer, recordArguments: true })));
    const [plain, recorded] = exporter.getFinishedSpans();
    expect(plain?.attributes).not.toHaveProperty('gen_ai.tool.call.arguments');
    const recordedArguments = recorded?.attributes['gen_ai.tool.call.arguments'];
    expect(recordedArguments).toContain('"city":"Lyon"');
    expect(recordedArguments).toContain('[REDACTED]');
    expect(recordedArguments).not.toContain('hunter2');
  });

  it('without a tracer provider makes no span and sends no traceparent, and the call goes through', async () => {
    fixture = await connectFixture();
    const result = await firstValueFrom(fixture.tx.attempt$('greet', { name: 'Ada' }).pipe(trace()));
    expect(result.data).toBe('Hello, Ada!');
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(metaSeen(0)).not.toHaveProperty('traceparent');
  });

  it('rejects bad options, naming the field', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    const bad = (options: any) => () => trace(options);
    expect(bad({ tracer: {} })).toThrowError(expect.objectContaining({ field: 'options.tracer' }));
    expect(bad({ recordArguments: 'yes' })).toThrowError(
      expect.objectContaining({ field: 'options.recordArguments' }),
    );
    expect(bad({ sampler: 1 })).toThrowError(expect.objectContaining({ field: 'options.sampler' }));
  });
});
