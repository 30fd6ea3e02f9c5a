import type { Span, SpanContext, Tracer } from '@opentelemetry/api';
import type { Observable, Subscriber } from 'rxjs';
import { type RetryEvent, type TxCall, txCallOf } from '../src/call.js';
import { statusOf, TxError, TxErrorCode } from '../src/errors.js';
import { parseOrThrow, type TraceOptions, TraceOptionsSchema } from '../src/schemas.js';
import type { TxMeta, TxResult } from '../src/types.js';

/** `@opentelemetry/api` when it is installed (an optional peer); without it `trace()` changes nothing. */
const otel = await import('@opentelemetry/api').catch(() => undefined);

/**
 * One OpenTelemetry span per subscription — outermost in a pipeline, one per logical call — named
 * `tools/call {tool}` (kind CLIENT) with the MCP semantic-convention attributes and `mcp_tx.*`
 * (request id, idempotency key, attempts, duplicate, status), an event per retry, error status on
 * failure and on cancel. Every attempt carries the span's W3C `traceparent` (and `tracestate`) in
 * its request `_meta`, so the server can continue the trace. Without `@opentelemetry/api`
 * installed it is a no-op.
 *
 * @example
 * tx.attempt$('search', { q: 'rxjs' }).pipe(retryWithPolicy(), trace({ tracer: provider.getTracer('agent') }));
 */
export function trace(options: TraceOptions = {}) {
  const { tracer, tracerName } = parseOrThrow(TraceOptionsSchema, options, 'options');
  return (source: Observable<TxResult>): TxCall => {
    const call = txCallOf(source, 'trace');
    if (otel === undefined) return call;
    return call.derive((subscriber) =>
      traceSubscription(call, tracer ?? otel.trace.getTracer(tracerName), subscriber),
    );
  };
}

type Otel = NonNullable<typeof otel>;

function traceSubscription(call: TxCall, tracer: Tracer, subscriber: Subscriber<TxResult>) {
  const api = otel as Otel;
  const { request, state } = call;
  const parent = api.context.active();
  const span = tracer.startSpan(
    `tools/call ${request.name}`,
    { kind: api.SpanKind.CLIENT, attributes: startAttributes(call) },
    parent,
  );
  const propagated = propagate(api, api.trace.setSpan(parent, span), span.spanContext());
  Object.assign(state.requestMeta, propagated);
  const stopListening = state.onRetry((event) => span.addEvent('retry', retryAttributes(event)));
  let ended = false;
  const end = (meta: TxMeta | undefined, error?: unknown) => {
    if (ended) return;
    ended = true;
    stopListening();
    for (const key of Object.keys(propagated)) delete state.requestMeta[key];
    finishSpan(api, span, meta ?? (error instanceof TxError ? error.meta : undefined), state.attempts, error);
  };
  // A call emits one result: the span ends with it (a consumer such as firstValueFrom leaves right after).
  const inner = api.context.with(api.trace.setSpan(parent, span), () =>
    call.subscribe({
      next: (result) => {
        end(result.meta);
        subscriber.next(result);
      },
      error: (error: unknown) => {
        end(undefined, error);
        subscriber.error(error);
      },
      complete: () => subscriber.complete(),
    }),
  );
  return () => {
    inner.unsubscribe();
    if (!ended) end(undefined, new TxError(TxErrorCode.Cancelled, 'The call was cancelled'));
  };
}

function startAttributes(call: TxCall): Record<string, string> {
  const { request } = call;
  const attributes: Record<string, string> = {
    'mcp.method.name': 'tools/call',
    'gen_ai.tool.name': request.name,
    'gen_ai.operation.name': 'execute_tool',
    'mcp_tx.request_id': request.requestId,
  };
  if (request.idempotencyKey !== undefined) attributes['mcp_tx.idempotency_key'] = request.idempotencyKey;
  if (request.transactionId !== undefined) attributes['mcp_tx.transaction_id'] = request.transactionId;
  return attributes;
}

function retryAttributes(event: RetryEvent): Record<string, string | number> {
  return {
    'mcp_tx.attempt': event.attempt,
    'mcp_tx.retry_delay_ms': event.delayMs,
    'error.type': event.error.code,
  };
}

/** The W3C trace context of `spanContext`: from the registered propagator, else formatted here. */
function propagate(api: Otel, context: ReturnType<Otel['context']['active']>, spanContext: SpanContext) {
  const carrier: Record<string, string> = {};
  api.propagation.inject(context, carrier);
  if (carrier.traceparent === undefined && api.isSpanContextValid(spanContext)) {
    const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
    carrier.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
    const traceState = spanContext.traceState?.serialize();
    if (traceState) carrier.tracestate = traceState;
  }
  const { traceparent, tracestate } = carrier;
  return { ...(traceparent && { traceparent }), ...(tracestate && { tracestate }) };
}

function finishSpan(api: Otel, span: Span, meta: TxMeta | undefined, attempts: number, error: unknown): void {
  span.setAttributes({
    'mcp_tx.attempts': meta?.attempts ?? attempts,
    'mcp_tx.duplicate': meta?.duplicate ?? false,
    'mcp_tx.status': meta?.status ?? (error instanceof TxError ? statusOf(error.code) : 'failed'),
  });
  if (error !== undefined) {
    const code = error instanceof TxError ? error.code : 'Error';
    span.setAttribute('error.type', code);
    span.setStatus({
      code: api.SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}
