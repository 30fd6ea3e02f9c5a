import { MemoryEventStore, Saga, type SagaStep } from 'mcp-tx';
import { openShop } from './demo-server.js';

/** An order saga whose payment is declined: the reservation is released, in reverse order. */
export async function main(log: (line: string) => void = console.log) {
  const { shop, tx, close } = await openShop({ retry: { baseDelayMs: 10 } });
  const events = new MemoryEventStore();
  const order = (cents: number): SagaStep[] => [
    {
      name: 'reserve',
      action: { tool: 'reserve_stock', args: { order: 'o-7' } },
      compensation: { tool: 'release_stock', args: (args) => args },
    },
    {
      name: 'payment',
      action: { tool: 'charge_payment', args: { order: 'o-7', cents } },
      compensation: { tool: 'refund_payment', args: ({ order }) => ({ order }) },
    },
    { name: 'shipping', action: { tool: 'ship_order', args: { order: 'o-7' } } },
  ];
  const result = await new Saga(tx, events, order(250_000)).run('saga-o-7');
  log(`saga ${result.sagaId}: ${result.status}; failed at ${result.failedStep} (${result.error?.message})`);
  log(
    `compensated: ${result.compensatedSteps.join(', ')}; compensation failures: ${result.compensationFailures.length}`,
  );
  log(`server side effects: ${JSON.stringify(shop.effects)}`);
  await close();
  return result;
}
