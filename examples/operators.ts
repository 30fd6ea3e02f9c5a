import { CircuitBreaker, memoryIdempotencyStore, tokenBucket } from 'mcp-tx';
import { circuitBreak, dedupe, retryWithPolicy, throttle, trace } from 'mcp-tx/operators';
import { lastValueFrom } from 'rxjs';
import { openShop } from './demo-server.js';

/**
 * Operators composed by hand on `tx.attempt$`, in an order of your own: limiter and breaker on every
 * attempt, retry around them, dedupe around the retried call, one span around it all. The same
 * keyed charge sent twice runs once.
 */
export async function main(log: (line: string) => void = console.log) {
  const { shop, tx, close } = await openShop();

  const limiter = tokenBucket({ ratePerSecond: 20, burst: 10 });
  const breaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeoutMs: 30_000 });
  const store = memoryIdempotencyStore({ windowMs: 300_000 });

  const charge$ = tx
    .attempt$('charge_payment', { order: 'o-42', cents: 500 }, { idempotencyKey: 'charge-42' })
    .pipe(
      throttle(limiter),
      circuitBreak(breaker),
      retryWithPolicy({ maxAttempts: 5, baseDelayMs: 200 }),
      dedupe(store),
      trace(),
    );
  const first = await lastValueFrom(charge$); // subscribing sends it
  const again = await lastValueFrom(charge$); // and again: the store answers, nothing is sent
  for (const { data, meta } of [first, again]) {
    log(`charge_payment → ${JSON.stringify(data)} attempts=${meta.attempts} duplicate=${meta.duplicate}`);
  }
  log(`breaker ${breaker.state}; charges made on the server: ${shop.effects['charge_payment:o-42']}`);
  await close();
  return {
    duplicates: [first.meta.duplicate, again.meta.duplicate],
    charges: shop.effects['charge_payment:o-42'],
  };
}
