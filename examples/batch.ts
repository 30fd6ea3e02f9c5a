import { HealthMonitor, tokenBucket } from 'mcp-tx';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { openShop } from './demo-server.js';

/** A batch of 1 000 calls: 32 at once, at most 2 000/s, each with its metadata, then a health report. */
export async function main(log: (line: string) => void = console.log) {
  const health = new HealthMonitor();
  const { tx, close } = await openShop({
    limiter: tokenBucket({ ratePerSecond: 2_000, burst: 100 }),
    monitor: health,
  });
  const started = Date.now();
  const results = await lastValueFrom(
    from(Array.from({ length: 1_000 }, (_, n) => n)).pipe(
      mergeMap((n) => tx.call$('ping', { n }, { idempotencyKey: `batch-${n}` }), 32),
      toArray(),
    ),
  );
  const seconds = (Date.now() - started) / 1_000;
  const { totals, tools } = health.report();
  log(`${results.length} calls in ${seconds.toFixed(2)} s (${Math.round(results.length / seconds)}/s)`);
  log(
    `success ${(totals.successRate * 100).toFixed(1)} %, p50 ${tools[0]?.latencyMs.p50} ms, p95 ${tools[0]?.latencyMs.p95} ms`,
  );
  await close();
  return { completed: results.length, successRate: totals.successRate };
}
