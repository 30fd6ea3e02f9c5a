import { type HealthAlert, HealthMonitor } from 'mcp-tx';
import { openShop } from './demo-server.js';

/** A health monitor on every call; an outage drops get_quote under the threshold and raises one alert. */
export async function main(log: (line: string) => void = console.log) {
  const health = new HealthMonitor({ alertThreshold: 0.8, minCalls: 5 });
  const alerts: HealthAlert[] = [];
  health.alerts$.subscribe((alert) => {
    alerts.push(alert);
    if (alert.kind !== 'tool') return log(`ALERT ${alert.kind}`);
    log(
      `ALERT ${alert.tool}: success rate ${(alert.successRate * 100).toFixed(0)} % < ${alert.threshold * 100} %`,
    );
  });
  const { shop, tx, close } = await openShop({ monitor: health, retry: false });
  for (let index = 0; index < 10; index++) await tx.call('get_quote', { item: 'apple' });
  shop.setOutage(true);
  for (let index = 0; index < 6; index++)
    await tx.call('get_quote', { item: 'apple' }).catch(() => undefined);
  const report = health.report();
  for (const tool of report.tools) {
    log(
      `${tool.tool}: ${tool.calls} calls, ${(tool.successRate * 100).toFixed(0)} % ok, p95 ${tool.latencyMs.p95} ms`,
    );
  }
  log(`healthy: ${report.healthy}`);
  health.dispose();
  await close();
  return { alerts: alerts.length, healthy: report.healthy };
}
