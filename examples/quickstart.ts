import { createMcpTx, isTxError, type TxError } from 'mcp-tx';
import { catchError, from, lastValueFrom, mergeMap, of, toArray } from 'rxjs';
import { connectInProcess, createDemoShop } from './demo-server.js';

/**
 * The main job on embedded defaults: a real MCP server in this process, calls through `tx.call$`'s
 * default pipeline (retry, dedupe), every result with its MCP-Tx metadata. Nothing to install or start.
 */
export async function main(log: (line: string) => void = console.log) {
  const shop = createDemoShop();
  const client = await connectInProcess(shop.server);
  const tx = createMcpTx(client, { timeoutMs: 5_000, retry: { baseDelayMs: 50 } });
  log(`connected; server speaks MCP-Tx: ${tx.serverSupportsTx}`);

  const stock = await tx.call('get_stock', { item: 'apple' });
  log(`get_stock → ${JSON.stringify(stock.data)} (request ${stock.meta.requestId})`);

  const synced = await tx.call('sync_inventory', {});
  log(
    `sync_inventory → ${JSON.stringify(synced.data)} after ${synced.meta.attempts} attempts (the first failed)`,
  );

  // A burst of orders; "apple" is sent twice with the same key: it is created once.
  const items = ['apple', 'pear', 'fig', 'apple'];
  const orders = await lastValueFrom(
    from(items).pipe(
      mergeMap((item) =>
        tx
          .call$('create_order', { item, quantity: 1 }, { idempotencyKey: `order-${item}` })
          .pipe(catchError((error: TxError) => of(error))),
      ),
      toArray(),
    ),
  );
  for (const order of orders) {
    if (isTxError(order)) log(`create_order failed: ${order.code} ${order.message}`);
    else log(`create_order → ${JSON.stringify(order.data)} duplicate=${order.meta.duplicate}`);
  }

  const invalid = await tx
    .call('create_order', { item: 'apple', quantity: 1n } as never)
    .catch((e: unknown) => e);
  if (isTxError(invalid)) log(`bad input stopped before the wire: ${invalid.code} (${invalid.message})`);

  await tx.close();
  await shop.server.close();
  log(`orders created on the server: ${shop.ordersCreated()} for ${items.length} requests`);
  return {
    ordersCreated: shop.ordersCreated(),
    duplicates: orders.filter((order) => !isTxError(order) && order.meta.duplicate).length,
    syncAttempts: synced.meta.attempts,
    rejected: isTxError(invalid),
  };
}
