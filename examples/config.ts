import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CircuitBreaker, createMcpTx, HealthMonitor, tokenBucket } from 'mcp-tx';
import { JsonlEventStore } from 'mcp-tx/node';
import { lastValueFrom, toArray } from 'rxjs';
import { connectInProcess, createDemoShop } from './demo-server.js';

/**
 * The default pipeline of `tx.call$` configured in full: timeouts, retry, dedupe, a limiter, a
 * breaker, a health monitor, an event log, tracing, per-tool policies. A charge's key comes from its
 * arguments (the `charge_payment` policy), so sending it twice charges once.
 */
export async function main(log: (line: string) => void = console.log) {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-tx-config-'));
  const shop = createDemoShop();
  const client = await connectInProcess(shop.server);

  // biome-ignore format: the comments are aligned
  const tx = createMcpTx(client, {
    timeoutMs: 30_000,                    // per attempt (default 30 s)
    retry: { maxAttempts: 3 },            // MCP-Tx 0.1.0 defaults: 3 attempts, 1 s base, ×2, 30 s cap, jitter; or false
    dedupe: { windowMs: 300_000 },        // on by default for calls with an idempotency key; { store } to share one; or false
    limiter: tokenBucket({ ratePerSecond: 50, burst: 20 }), // off unless given
    breaker: new CircuitBreaker(),        // off unless given
    monitor: new HealthMonitor(),         // off unless given
    events: new JsonlEventStore(join(dir, 'events.jsonl')), // record every call; off unless given
    trace: true,                          // off unless true or { tracer }
    tools: { charge_payment: { retry: { maxAttempts: 5 }, idempotencyKey: (args) => `charge-${args.order}` } },
  });
  tx.tool('search', { timeoutMs: 5_000, breaker: false }); // per-tool policy; `false` switches an operator off

  const first = await tx.call('charge_payment', { order: 'o-7', cents: 900 });
  const again = await tx.call('charge_payment', { order: 'o-7', cents: 900 });
  log(
    `charge_payment key ${again.meta.idempotencyKey}: duplicate ${first.meta.duplicate}, then ${again.meta.duplicate}`,
  );
  const found = await tx.call('search', { q: 'p' });
  log(`search → ${JSON.stringify(found.data)}`);

  const report = tx.config.monitor?.report();
  log(`health: ${report?.totals.calls} calls, success ${report?.totals.successRate}`);
  await tx.close();
  await shop.server.close();
  const events = tx.config.events as JsonlEventStore;
  const logged = await lastValueFrom(events.read$().pipe(toArray()));
  log(`event log: ${logged.map((event) => `${event.type} ${event.tool}`).join(', ')}`);
  await events.close();
  await rm(dir, { recursive: true, force: true });
  return {
    key: again.meta.idempotencyKey,
    duplicate: again.meta.duplicate,
    charges: shop.effects['charge_payment:o-7'],
    calls: report?.totals.calls,
    events: logged.length,
  };
}
