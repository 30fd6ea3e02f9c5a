/**
 * The slices of OpenTelemetry's `Tracer` and `Meter` that mcp-tx's public API names, written
 * structurally: a real `@opentelemetry/api` tracer or meter fits them, and the published type
 * declarations never import `@opentelemetry/api` (an optional peer most users do not have).
 */

/** Attribute values as OpenTelemetry takes them. */
export type OtelAttributes = Record<string, string | number | boolean | undefined>;

/**
 * What mcp-tx asks of an OpenTelemetry `Tracer`: `startSpan`. Any `@opentelemetry/api` tracer is one.
 *
 * @example
 * const tracer: TracerLike = trace.getTracer('agent');
 * createMcpTx(client, { trace: { tracer } });
 */
export interface TracerLike {
  /** Starts a span named `name` (with span options and a parent context, as OpenTelemetry takes them). */
  startSpan(name: string, options?: object, context?: unknown): unknown;
}

/**
 * What mcp-tx asks of an OpenTelemetry `Meter`: a histogram and counters. Any `@opentelemetry/api`
 * meter is one.
 *
 * @example
 * const meter: MeterLike = metrics.getMeter('agent');
 * new HealthMonitor({ meter });
 */
export interface MeterLike {
  /** Makes the histogram named `name` (the operation duration). */
  createHistogram(name: string, options?: { description?: string; unit?: string }): HistogramLike;
  /** Makes the counter named `name` (calls, attempts, reconnects). */
  createCounter(name: string, options?: { description?: string; unit?: string }): CounterLike;
}

/**
 * An OpenTelemetry histogram, as {@link MeterLike} makes it.
 *
 * @example
 * meter.createHistogram('mcp.client.operation.duration', { unit: 's' }).record(0.12, { 'gen_ai.tool.name': 'search' });
 */
export interface HistogramLike {
  record(value: number, attributes?: OtelAttributes): void;
}

/**
 * An OpenTelemetry counter, as {@link MeterLike} makes it.
 *
 * @example
 * meter.createCounter('mcp_tx.calls').add(1, { 'gen_ai.tool.name': 'search' });
 */
export interface CounterLike {
  add(value: number, attributes?: OtelAttributes): void;
}
