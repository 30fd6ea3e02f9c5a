import type { Context, Span, Tracer } from '@opentelemetry/api';
import { from, type Subscriber, switchMap, type TeardownLogic } from 'rxjs';
import * as z from 'zod';
import { type RetryEvent, type TxCall, withCallMeta } from '../src/call/call.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { hasMethod, parseOrThrow } from '../src/config/validators.js';
import { TxError, TxErrorCode } from '../src/core/errors.js';
import { loadedOtelApi, loadOtelApi, type OtelApi } from '../src/core/optionalOtel.js';
import type { TracerLike } from '../src/core/otelTypes.js';
import { sanitizeMessage } from '../src/core/sanitize.js';
import { isTraceparent, type W3cTraceContext, w3cTraceContextOf } from '../src/core/traceContext.js';
import type { TxMeta, TxRequest, TxResult } from '../src/core/types.js';

/** Options of the `trace` operator (and of `trace` in the config). */
export const TraceOptionsSchema = z.strictObject({
  tracer: z
    .custom<TracerLike>((value) => hasMethod(value, 'startSpan'), 'must be an OpenTelemetry Tracer')
    .optional(),
  tracerName: z.string().min(1, 'must not be empty').default('mcp-tx'),
  recordArguments: z.boolean().default(false),
});
/**
 * Options of the `trace` operator, and `trace` in {@link TxConfig} (`true` means all defaults):
 *
 * - `tracer` (none): the OpenTelemetry `Tracer` spans are made with; without one, the global
 *   provider's tracer named `tracerName`.
 * - `tracerName` (`'mcp-tx'`): the name of that global tracer.
 * - `recordArguments` (`false`): put the call's arguments on the span as
 *   `gen_ai.tool.call.arguments`, secrets redacted and capped at 4096 characters.
 *
 * @example
 * const tx = createMcpTx(client, { trace: { tracer: provider.getTracer('agent'), recordArguments: true } });
 */
export type TraceOptions = z.input<typeof TraceOptionsSchema>;

/** Longest recorded arguments or exception stack; the rest is cut and marked. */
const MAX_RECORDED_LENGTH = 4_096;
const W3C_KEYS = ['traceparent', 'tracestate'] as const;

/**
 * One OpenTelemetry span per subscription — outermost in a pipeline, one per logical call — named
 * `tools/call {tool}` (kind CLIENT, child of the context active at subscription) with the MCP
 * semantic-convention attributes and `mcp_tx.*` (request id, idempotency key, transaction id,
 * attempts, duplicate, status), a `retry` event per retry, ERROR status on failure and on cancel.
 * Every attempt carries the span's W3C `traceparent` (and `tracestate`) in its request `_meta`, so
 * the server can continue the trace. Without `@opentelemetry/api` installed it changes nothing and
 * warns once per process (`process.emitWarning`, code `MCP_TX_NO_OTEL`); the calls still run. The
 * package is loaded when the first `trace()` is made, never by importing mcp-tx.
 *
 * @example
 * const tracer = provider.getTracer('agent');
 * tx.attempt$('search', { q: 'rxjs' }).pipe(retryWithPolicy(), trace({ tracer, recordArguments: true }));
 */
export function trace(options: TraceOptions = {}): TxOperator {
  const { tracer, tracerName, recordArguments } = parseOrThrow(TraceOptionsSchema, options, 'options');
  const apiLoad = loadOtelApi();
  const tracerOf = (api: OtelApi) => (tracer as Tracer | undefined) ?? api.trace.getTracer(tracerName);
  const traced = (api: OtelApi, call: TxCall, subscriber: Subscriber<TxResult>) =>
    traceSubscription(api, tracerOf(api), call, recordArguments, subscriber);
  return txOperator('trace', (call) => {
    const known = loadedOtelApi();
    if (known === undefined) {
      // The first calls wait for the optional peer to load (once per process).
      return from(apiLoad).pipe(
        switchMap((api) =>
          api === undefined ? call : call.derive((subscriber) => traced(api, call, subscriber)),
        ),
      );
    }
    const { api } = known;
    if (api === undefined) return call;
    return call.derive((subscriber) => traced(api, call, subscriber));
  });
}

/** How a traced subscription ended: with a result's metadata, or with an error. */
interface SpanEnd {
  readonly meta?: TxMeta;
  readonly error?: unknown;
}

function traceSubscription(
  api: OtelApi,
  tracer: Tracer,
  call: TxCall,
  recordArguments: boolean,
  subscriber: Subscriber<TxResult>,
): TeardownLogic {
  const parent = api.context.active();
  const span = tracer.startSpan(
    `tools/call ${call.request.name}`,
    { kind: api.SpanKind.CLIENT, attributes: startAttributes(call.request, recordArguments) },
    parent,
  );
  // No SDK registered and no trace to continue: nothing to record, nor to send (an all-zero
  // traceparent is invalid), so the call runs as it is.
  if (!span.isRecording() && !api.trace.isSpanContextValid(span.spanContext())) {
    return call.subscribe(subscriber);
  }
  const spanContext = api.trace.setSpan(parent, span);
  const withdrawTraceContext = shareTraceContext(
    call.state.requestMeta,
    traceContextOf(api, spanContext, span),
  );
  const stopListening = call.state.onRetry((event) => span.addEvent('retry', retryAttributes(event)));
  let open = true;
  const end = (outcome: SpanEnd) => {
    if (!open) return;
    open = false;
    stopListening();
    withdrawTraceContext();
    finishSpan(api, span, call, outcome);
  };
  // A call emits one result: the span ends with it (a consumer such as firstValueFrom leaves right after).
  const inner = api.context.with(spanContext, () =>
    call.subscribe({
      next: (result) => {
        end({ meta: result.meta });
        subscriber.next(result);
      },
      error: (error: unknown) => {
        end({ error });
        subscriber.error(error);
      },
      complete: () => {
        // The cancellation is built only for a span still open (not after its result, the usual case).
        if (open) end({ error: cancellation('ended without a result') });
        subscriber.complete();
      },
    }),
  );
  return () => {
    inner.unsubscribe();
    if (open) end({ error: cancellation('was cancelled before it ended') });
  };
}

function cancellation(what: string): TxError {
  return new TxError(TxErrorCode.Cancelled, `The call ${what}`);
}

function startAttributes(request: TxRequest, recordArguments: boolean): Record<string, string> {
  const attributes: Record<string, string> = {
    'mcp.method.name': 'tools/call',
    'gen_ai.tool.name': request.name,
    'gen_ai.operation.name': 'execute_tool',
    'mcp_tx.request_id': request.requestId,
  };
  if (request.idempotencyKey !== undefined) attributes['mcp_tx.idempotency_key'] = request.idempotencyKey;
  if (request.transactionId !== undefined) attributes['mcp_tx.transaction_id'] = request.transactionId;
  if (recordArguments) attributes['gen_ai.tool.call.arguments'] = recordedArguments(request.args);
  return attributes;
}

/** The arguments as JSON, secrets redacted and length capped (bad input is only rejected later, by the attempt). */
function recordedArguments(args: unknown): string {
  try {
    return sanitizeMessage(JSON.stringify(args) ?? 'undefined', MAX_RECORDED_LENGTH);
  } catch {
    return '[not serializable]';
  }
}

function retryAttributes(event: RetryEvent): Record<string, string | number> {
  return {
    'mcp_tx.attempt': event.attempt,
    'mcp_tx.retry_delay_ms': event.delayMs,
    'error.type': event.error.code,
  };
}

/** The span's W3C trace context: from the registered propagator when it writes W3C, else formatted here. */
function traceContextOf(api: OtelApi, context: Context, span: Span): W3cTraceContext {
  const carrier: Record<string, string> = {};
  api.propagation.inject(context, carrier);
  const { traceparent, tracestate } = carrier;
  if (!isTraceparent(traceparent)) return w3cTraceContextOf(span.spanContext());
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * Puts `traceContext` in the `_meta` every attempt sends (replacing any other trace context there);
 * the returned function takes out what is still this one's.
 */
function shareTraceContext(requestMeta: Record<string, unknown>, traceContext: W3cTraceContext): () => void {
  for (const key of W3C_KEYS) {
    if (traceContext[key] === undefined) delete requestMeta[key];
    else requestMeta[key] = traceContext[key];
  }
  return () => {
    for (const key of W3C_KEYS) {
      if (traceContext[key] !== undefined && requestMeta[key] === traceContext[key]) delete requestMeta[key];
    }
  };
}

function finishSpan(api: OtelApi, span: Span, call: TxCall, { meta, error }: SpanEnd): void {
  const failed = error === undefined ? undefined : withCallMeta(call, error);
  const endMeta = meta ?? (failed instanceof TxError ? failed.meta : undefined);
  span.setAttributes({
    'mcp_tx.attempts': endMeta?.attempts ?? call.state.attempts,
    'mcp_tx.duplicate': endMeta?.duplicate ?? false,
    'mcp_tx.status': endMeta?.status ?? 'failed',
  });
  if (failed !== undefined) markFailed(api, span, failed);
  span.end();
}

/** ERROR status, `error.type` (the TxError code, else the error's name) and, unless cancelled, the exception. */
function markFailed(api: OtelApi, span: Span, error: unknown): void {
  const exception = exceptionOf(error);
  span.setAttribute('error.type', error instanceof TxError ? error.code : (exception.name ?? '_OTHER'));
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: exception.message });
  if (!(error instanceof TxError && error.code === TxErrorCode.Cancelled)) span.recordException(exception);
}

/** An error as a span records it. */
interface RecordedException {
  name?: string;
  message: string;
  stack?: string;
}

/** The error as recorded on the span, sanitized (TxError messages already are; others may not be). */
function exceptionOf(error: unknown): RecordedException {
  if (!(error instanceof Error)) return { message: sanitizeMessage(String(error)) };
  const exception: RecordedException = { name: error.name, message: sanitizeMessage(error.message) };
  if (error.stack !== undefined) exception.stack = sanitizeMessage(error.stack, MAX_RECORDED_LENGTH);
  return exception;
}
