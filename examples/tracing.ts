import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { openShop } from './demo-server.js';

/** One OpenTelemetry span per logical call, with retry events, and the traceparent the server receives. */
export async function main(log: (line: string) => void = console.log) {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer(
    'example',
  );
  const { tx, close } = await openShop({ trace: { tracer }, retry: { baseDelayMs: 10 } });
  await tx.call('get_stock', { item: 'pear' });
  await tx.call('sync_inventory', {}); // fails once, then succeeds: one span, one retry event
  for (const span of exporter.getFinishedSpans()) {
    const events = span.events.map((event) => event.name).join(', ') || 'none';
    log(
      `${span.name} trace=${span.spanContext().traceId} attempts=${span.attributes['mcp_tx.attempts']} events=${events}`,
    );
  }
  await close();
  return {
    spans: exporter.getFinishedSpans().map((span) => ({ name: span.name, events: span.events.length })),
  };
}
