import {
  context,
  createTraceState,
  trace as otelTrace,
  propagation,
  type Span,
  SpanStatusCode,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { asyncScheduler, firstValueFrom, type Observable, of, retry, timer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { trace } from '../../../operators/trace.js';
import type { TxCall } from '../../../src/call/call.js';
import { statusOf, TxError, TxErrorCode } from '../../../src/core/errors.js';
import { loadOtelApi } from '../../../src/core/optionalOtel.js';
import { isTraceparent, w3cTraceContextOf } from '../../../src/core/traceContext.js';
import type { TxRequest, TxResult } from '../../../src/core/types.js';
import { okResult, virtualCall } from '../../support/virtualCall.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('unit');
const contextManager = new AsyncLocalStorageContextManager();
const testScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
/** W3C Trace Context version 00, written independently of the code under test. */
const W3C_TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  // The optional peer loads when the first trace() is made; the virtual-time tests below start after it.
  await loadOtelApi();
});
afterAll(() => {
  context.disable();
});
afterEach(() => {
  propagation.disable();
  exporter.reset();
});

const transient = () => new TxError(TxErrorCode.ToolError, 'TEMPORARY_FAILURE: busy', { retryable: true });
const onlySpan = (): ReadableSpan => {
  const spans = exporter.getFinishedSpans();
  expect(spans).toHaveLength(1);
  return spans[0] as ReadableSpan;
};
const traceparentOf = (span: ReadableSpan) =>
  `00-${span.spanContext().traceId}-${span.spanContext().spanId}-${span.spanContext().traceFlags.toString(16).padStart(2, '0')}`;

/** A virtual call whose attempts follow `outcomes` and that notes the `_meta` each attempt would send. */
function scriptedCall(outcomes: (attempt: number) => Observable<TxResult>, request?: Partial<TxRequest>) {
  const sentMeta: Array<Record<string, unknown>> = [];
  const activeSpans: Array<Span | undefined> = [];
  const call: TxCall = virtualCall(
    (attempt) => {
      sentMeta.push({ ...call.state.requestMeta });
      activeSpans.push(otelTrace.getActiveSpan());
      return outcomes(attempt);
    },
    { scheduler: asyncScheduler, request },
  );
  return { call, sentMeta, activeSpans };
}

/** `call` retried `count` times, 1 ms apart, telling the call's retry listeners as retryWithPolicy does. */
const retried = (call: TxCall, count: number) =>
  call.pipe(
    retry({
      count,
      delay: (error: TxError, attempt) => {
        call.state.notifyRetry({ attempt, delayMs: 1, error });
        return timer(1, asyncScheduler);
      },
    }),
  );

describe('trace in virtual time', () => {
  it('passes the result through and ends its span with it', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const { call } = scriptedCall(() => cold('--(a|)', { a: okResult() }));
      expectObservable(call.pipe(trace({ tracer }))).toBe('--(a|)', { a: okResult() });
    });
    expect(onlySpan().ended).toBe(true);
  });

  it('puts the traceparent in _meta and makes the span active for the source, then withdraws it', () => {
    let scripted: ReturnType<typeof scriptedCall> | undefined;
    testScheduler().run(({ cold, expectObservable }) => {
      scripted = scriptedCall(() => cold('--(a|)', { a: okResult() }));
      expectObservable(scripted.call.pipe(trace({ tracer }))).toBe('--(a|)', { a: okResult() });
    });
    const span = onlySpan();
    expect(scripted?.sentMeta).toEqual([{ traceparent: traceparentOf(span) }]);
    expect(scripted?.activeSpans[0]?.spanContext().spanId).toBe(span.spanContext().spanId);
    expect(scripted?.call.state.requestMeta).toEqual({});
  });

  it('ends exactly one span per subscription, whatever the retries and however the call ends', () => {
    type Ending = { kind: 'success' } | { kind: 'failure'; code: TxErrorCode } | { kind: 'cancel' | 'empty' };
    const ending = fc.oneof(
      fc.constant<Ending>({ kind: 'success' }),
      fc.constantFrom(...Object.values(TxErrorCode)).map((code): Ending => ({ kind: 'failure', code })),
      fc.constantFrom<Ending>({ kind: 'cancel' }, { kind: 'empty' }),
    );
    fc.assert(
      fc.property(fc.nat(4), ending, fc.integer({ min: 1, max: 50 }), (retries, end, lastMs) => {
        exporter.reset();
        let scripted: ReturnType<typeof scriptedCall> | undefined;
        testScheduler().run(({ cold }) => {
          const last = `${lastMs}ms `;
          const final = (attempt: number): Observable<TxResult> => {
            if (end.kind === 'success') return cold(`${last}(a|)`, { a: okResult(attempt) });
            if (end.kind === 'failure')
              return cold<TxResult>(`${last}#`, undefined, new TxError(end.code, 'it failed'));
            return cold<TxResult>(end.kind === 'empty' ? `${last}|` : '-');
          };
          scripted = scriptedCall((attempt) =>
            attempt <= retries ? cold<TxResult>('-#', undefined, transient()) : final(attempt),
          );
          const subscription = retried(scripted.call, retries)
            .pipe(trace({ tracer }))
            .subscribe({ error: () => undefined });
          asyncScheduler.schedule(() => subscription.unsubscribe(), 1_000);
        });
        const span = onlySpan();
        const failed = end.kind !== 'success';
        const code = end.kind === 'failure' ? end.code : TxErrorCode.Cancelled;
        expect(span.attributes).toMatchObject({
          'mcp_tx.attempts': retries + 1,
          'mcp_tx.duplicate': false,
          'mcp_tx.status': failed ? statusOf(code) : 'completed',
        });
        expect(span.attributes['error.type']).toBe(failed ? code : undefined);
        expect(span.status.code).toBe(failed ? SpanStatusCode.ERROR : SpanStatusCode.UNSET);
        const retryEvents = Array.from({ length: retries }, () => 'retry');
        const exception = failed && code !== TxErrorCode.Cancelled ? ['exception'] : [];
        expect(span.events.map((event) => event.name)).toEqual([...retryEvents, ...exception]);
        expect(span.events.slice(0, retries).map((event) => event.attributes?.['mcp_tx.attempt'])).toEqual(
          retryEvents.map((_, index) => index + 1),
        );
        expect(scripted?.sentMeta).toEqual(Array(retries + 1).fill({ traceparent: traceparentOf(span) }));
        expect(scripted?.call.state.requestMeta).toEqual({});
      }),
      { numRuns: 60 },
    );
  });

  it('one span per subscription: a re-subscribed traced call makes a new span with a new traceparent', () => {
    let scripted: ReturnType<typeof scriptedCall> | undefined;
    testScheduler().run(({ cold }) => {
      scripted = scriptedCall((attempt) => cold('-(a|)', { a: okResult(attempt) }));
      const traced = scripted.call.pipe(trace({ tracer }));
      traced.subscribe();
      asyncScheduler.schedule(() => traced.subscribe(), 5);
    });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.attributes['mcp_tx.attempts'])).toEqual([1, 2]);
    expect(scripted?.sentMeta).toEqual(spans.map((span) => ({ traceparent: traceparentOf(span) })));
  });

  it('records an error that is not a TxError under its name, sanitized', () => {
    testScheduler().run(({ cold }) => {
      const { call } = scriptedCall(() =>
        cold<TxResult>('-#', undefined, new RangeError('bad token=abc123')),
      );
      call.pipe(trace({ tracer })).subscribe({ error: () => undefined });
    });
    const span = onlySpan();
    expect(span.attributes).toMatchObject({ 'error.type': 'RangeError', 'mcp_tx.status': 'failed' });
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'bad token=[REDACTED]' });
  });

  it('ends the span when arguments cannot be recorded (bad input is the attempt’s to reject)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    testScheduler().run(({ cold }) => {
      const { call } = scriptedCall(() => cold('-(a|)', { a: okResult() }), { args: cyclic });
      call.pipe(trace({ tracer, recordArguments: true })).subscribe();
    });
    expect(onlySpan().attributes['gen_ai.tool.call.arguments']).toBe('[not serializable]');
  });
});

describe('trace context propagation', () => {
  const runTraced = () => {
    let scripted: ReturnType<typeof scriptedCall> | undefined;
    testScheduler().run(({ cold }) => {
      scripted = scriptedCall(() => cold('-(a|)', { a: okResult() }));
      scripted.call.pipe(trace({ tracer })).subscribe();
    });
    return { sent: scripted?.sentMeta[0], span: onlySpan() };
  };
  const propagatorWriting = (entries: (traceId: string, spanId: string) => Record<string, string>) =>
    ({
      inject: (carrier, target, setter) => {
        const spanContext = otelTrace.getSpanContext(carrier);
        if (spanContext === undefined) return;
        for (const [key, value] of Object.entries(entries(spanContext.traceId, spanContext.spanId))) {
          setter.set(target, key, value);
        }
      },
      extract: (carrier) => carrier,
      fields: () => [],
    }) satisfies TextMapPropagator;

  it('uses what a registered W3C propagator writes', () => {
    propagation.setGlobalPropagator(
      propagatorWriting((traceId, spanId) => ({
        traceparent: `00-${traceId}-${spanId}-01`,
        tracestate: 'registered=1',
        baggage: 'user=ada',
      })),
    );
    const { sent, span } = runTraced();
    expect(sent).toEqual({ traceparent: traceparentOf(span), tracestate: 'registered=1' });
  });

  it('formats the traceparent itself when the registered propagator does not write W3C', () => {
    propagation.setGlobalPropagator(
      propagatorWriting((traceId, spanId) => ({ b3: `${traceId}-${spanId}-1`, traceparent: 'garbage' })),
    );
    const { sent, span } = runTraced();
    expect(sent).toEqual({ traceparent: traceparentOf(span) });
  });
});

describe('w3cTraceContextOf', () => {
  const hex = (length: number) =>
    fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });

  it('formats every valid span context as a W3C traceparent that reads back to the same ids and flags', () => {
    fc.assert(
      fc.property(hex(32), hex(16), fc.integer({ min: 0, max: 255 }), (traceId, spanId, traceFlags) => {
        const valid = /[1-9a-f]/.test(traceId) && /[1-9a-f]/.test(spanId);
        const { traceparent } = w3cTraceContextOf({ traceId, spanId, traceFlags });
        if (!valid) {
          expect(traceparent).toBeUndefined();
          return;
        }
        expect(traceparent).toMatch(W3C_TRACEPARENT);
        expect(isTraceparent(traceparent)).toBe(true);
        const [, readTraceId, readSpanId, flags] = (traceparent as string).split('-');
        expect([readTraceId, readSpanId, Number.parseInt(flags as string, 16)]).toEqual([
          traceId,
          spanId,
          traceFlags,
        ]);
      }),
    );
  });

  it('carries a non-empty trace state as tracestate', () => {
    const ids = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 0 };
    expect(w3cTraceContextOf({ ...ids, traceState: createTraceState('a=1,b=2') })).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
      tracestate: 'a=1,b=2',
    });
    expect(w3cTraceContextOf({ ...ids, traceState: createTraceState('') })).not.toHaveProperty('tracestate');
  });

  it('rejects what is not a version-00 traceparent', () => {
    for (const value of [
      undefined,
      '',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1',
    ]) {
      expect(isTraceparent(value)).toBe(false);
    }
  });
});

describe('trace without @opentelemetry/api', () => {
  it('returns the call unchanged and warns once, with code MCP_TX_NO_OTEL, naming the package', async () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    vi.resetModules();
    vi.doMock('@opentelemetry/api', () => {
      throw new Error("Cannot find package '@opentelemetry/api'");
    });
    try {
      const { trace: traceWithoutOtel } = await import('../../../operators/trace.js');
      const { virtualCall: freshVirtualCall } = await import('../../support/virtualCall.js');
      const call = freshVirtualCall(() => of(okResult()), { scheduler: asyncScheduler });
      const traceOperator = traceWithoutOtel({ tracer });
      await expect(firstValueFrom(traceOperator(call))).resolves.toEqual(okResult());
      expect(traceOperator(call)).toBe(call);
      expect(() => traceWithoutOtel({ tracer: {} as never })).toThrowError(
        expect.objectContaining({ field: 'options.tracer' }),
      );
      traceWithoutOtel();
      await firstValueFrom(traceWithoutOtel()(call));
      const noOtel = emitWarning.mock.calls.filter(
        ([, options]) => (options as { code?: string })?.code === 'MCP_TX_NO_OTEL',
      );
      expect(noOtel).toHaveLength(1);
      expect(String(noOtel[0]?.[0])).toContain('npm i @opentelemetry/api');
    } finally {
      emitWarning.mockRestore();
      vi.doUnmock('@opentelemetry/api');
      vi.resetModules();
    }
  });
});
