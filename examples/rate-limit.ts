import { tokenBucket } from 'mcp-tx';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { openShop } from './demo-server.js';

/** A burst of 100 calls through a token bucket (50/s, burst 10): none dropped, none faster than the budget. */
export async function main(log: (line: string) => void = console.log) {
  const limiter = tokenBucket({ ratePerSecond: 50, burst: 10 });
  const { shop, tx, close } = await openShop({ limiter });
  const started = Date.now();
  const results = await lastValueFrom(
    from(Array.from({ length: 100 }, (_, n) => n)).pipe(
      mergeMap((n) => tx.call$('ping', { n })),
      toArray(),
    ),
  );
  const seconds = (Date.now() - started) / 1_000;
  log(
    `${results.length} calls in ${seconds.toFixed(2)} s (${Math.round(results.length / seconds)}/s; budget 10 at once + 50/s)`,
  );
  await close();
  return { completed: results.length, served: shop.effects.ping, seconds };
}
