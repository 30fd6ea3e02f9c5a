import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlEventStore } from 'mcp-tx/node';
import { lastValueFrom, toArray } from 'rxjs';
import { openShop } from './demo-server.js';

/** Every call logged to a JSONL event log, then replayed from the file by a fresh store (as after a restart). */
export async function main(log: (line: string) => void = console.log) {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-tx-example-'));
  const path = join(dir, 'events.jsonl');
  const events = new JsonlEventStore(path, { fsync: true });
  const { tx, close } = await openShop({ events, retry: { baseDelayMs: 10 } });
  await tx.call('get_stock', { item: 'apple' }, { transactionId: 'restock-1' });
  await tx.call('sync_inventory', {}, { transactionId: 'restock-1' });
  await tx
    .call('create_order', { item: 'fig', quantity: 0 }, { transactionId: 'restock-1' })
    .catch(() => undefined);
  await close();
  await events.close();

  const replayed = await lastValueFrom(
    new JsonlEventStore(path).read$({ transactionId: 'restock-1' }).pipe(toArray()),
  );
  for (const event of replayed) log(`${event.at} ${event.type} ${event.tool} ${JSON.stringify(event.data)}`);
  await rm(dir, { recursive: true, force: true });
  return { types: replayed.map((event) => event.type) };
}
