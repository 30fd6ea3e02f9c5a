import { txOperator } from 'mcp-tx';
import { retryWithPolicy } from 'mcp-tx/operators';
import { defer, lastValueFrom } from 'rxjs';
import { openShop } from './demo-server.js';

/**
 * An operator of your own with `txOperator`: `announced` logs each time the call is sent. Inside the
 * retry it sees every attempt; outside, the logical call once. `sync_inventory` fails every other call.
 */
export async function main(log: (line: string) => void = console.log) {
  const { tx, close } = await openShop();

  // Subscribing to a call sends it: `defer` runs once per subscription, so once per attempt here.
  const announced = txOperator('announced', (call) =>
    defer(() => {
      log(`sending ${call.request.name} (request ${call.request.requestId})`);
      return call;
    }),
  );
  const inside = await lastValueFrom(
    tx.attempt$('sync_inventory', {}).pipe(announced, retryWithPolicy({ baseDelayMs: 10 })),
  );
  log(`inside the retry: ${inside.meta.attempts} attempts, each announced`);

  const outside = await lastValueFrom(
    tx.attempt$('sync_inventory', {}).pipe(retryWithPolicy({ baseDelayMs: 10 }), announced),
  );
  log(`outside the retry: ${outside.meta.attempts} attempts, announced once`);
  await close();
  return { attempts: [inside.meta.attempts, outside.meta.attempts] };
}
