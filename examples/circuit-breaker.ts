import { CircuitBreaker, isTxError, type TxError } from 'mcp-tx';
import { openShop } from './demo-server.js';

/** A pricing outage trips the breaker; calls are refused at once; after the recovery time a probe closes it. */
export async function main(log: (line: string) => void = console.log) {
  const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 200 });
  const transitions: string[] = [];
  const watching = breaker.state$.subscribe((state) => transitions.push(state));
  const { shop, tx, close } = await openShop({ breaker, retry: false });
  const quote = async () => {
    const outcome = await tx.call('get_quote', { item: 'apple' }).catch((error: TxError) => error);
    log(isTxError(outcome) ? `quote failed: ${outcome.code}` : `quote: ${JSON.stringify(outcome.data)}`);
    return outcome;
  };
  shop.setOutage(true);
  for (let index = 0; index < 4; index++) await quote();
  log(`breaker is ${breaker.state}`);
  shop.setOutage(false);
  await new Promise((resolve) => setTimeout(resolve, 250));
  log(`after the recovery time the breaker is ${breaker.state}`);
  await quote();
  log(`transitions: ${transitions.join(' → ')}`);
  watching.unsubscribe();
  await close();
  return { transitions };
}
