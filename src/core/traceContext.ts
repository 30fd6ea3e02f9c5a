/** The W3C trace context entries a request's `_meta` carries (the MCP semantic conventions' keys). */
export interface W3cTraceContext {
  traceparent?: string;
  tracestate?: string;
}

/** A version-00 `traceparent`: lowercase hex ids, neither all zeros (W3C Trace Context §3.2). */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** What {@link w3cTraceContextOf} reads of an OpenTelemetry `SpanContext`. */
interface SpanContextLike {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly traceState?: { serialize(): string };
}

/**
 * Whether `value` is a valid version-00 W3C `traceparent`.
 *
 * @example
 * isTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'); // true
 * isTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'); // false
 */
export function isTraceparent(value: unknown): value is string {
  return typeof value === 'string' && TRACEPARENT.test(value);
}

/**
 * The W3C trace context of `spanContext`, formatted without a propagator: `traceparent`
 * (`00-{traceId}-{spanId}-{flags}`) and `tracestate` when the context has one. Empty when the
 * context is not valid (all-zero ids, say), as W3C forbids sending such a `traceparent`.
 *
 * @example
 * w3cTraceContextOf({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 });
 * // { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }
 */
export function w3cTraceContextOf(spanContext: SpanContextLike): W3cTraceContext {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  if (!isTraceparent(traceparent)) return {};
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}
