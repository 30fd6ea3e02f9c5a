import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createMcpTx, mcpTxClientCapabilities } from 'mcp-tx';
import { faultyTransport } from 'mcp-tx/testing';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { createDemoShop } from './demo-server.js';

/**
 * Your pipeline against a flaky network, deterministically (a seed): `faultyTransport` loses a fifth of
 * the responses after the server ran the call and fails a tenth of the sends. 30 keyed charges
 * through the default pipeline all complete, and each is made once: the server's `txTool` answers a
 * retried key with its stored result.
 */
export async function main(log: (line: string) => void = console.log) {
  const shop = createDemoShop();
  const server = shop.server;
  const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });

  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const transport = faultyTransport(clientSide, { dropResponseRate: 0.2, failRate: 0.1, seed: 42 });
  await client.connect(transport);
  // ... run your pipeline; transport.faults counts what was injected
  const tx = createMcpTx(client, {
    timeoutMs: 100, // a lost response is a timeout: keep it short here
    retry: { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 50 },
  });
  const orders = Array.from({ length: 30 }, (_, index) => `o-${index + 1}`);
  const results = await lastValueFrom(
    from(orders).pipe(
      mergeMap(
        (order) => tx.call$('charge_payment', { order, cents: 100 }, { idempotencyKey: `pay-${order}` }),
        8,
      ),
      toArray(),
    ),
  );
  const attempts = results.reduce((sum, { meta }) => sum + meta.attempts, 0);
  const charges = orders.map((order) => shop.effects[`charge_payment:${order}`] ?? 0);
  log(
    `${results.length} charges completed in ${attempts} attempts; faults injected: ${JSON.stringify(transport.faults)}`,
  );
  log(
    `charges made per order on the server: ${charges.every((count) => count === 1) ? 'each exactly once' : charges.join(' ')}`,
  );
  await tx.close();
  await server.close();
  return { completed: results.length, attempts, charges, faults: { ...transport.faults } };
}
