import { runWorkflow } from 'mcp-tx';
import { openShop } from './demo-server.js';

/** A multi-step data pipeline as one transaction: extract → summarize → publish, run twice. */
export async function main(log: (line: string) => void = console.log) {
  const { shop, tx, close } = await openShop({ retry: { baseDelayMs: 20 } });
  const steps = [
    { name: 'extract', tool: 'extract_orders', args: { order: 'nightly-42' } },
    { name: 'summarize', tool: 'summarize_orders', args: { order: 'nightly-42' } },
    { name: 'publish', tool: 'publish_report', args: { order: 'nightly-42' } },
  ];
  const first = await runWorkflow(tx, { id: 'pipeline-nightly-42', steps });
  for (const step of first.steps)
    log(`${step.name}: ${step.status}, attempts ${step.attempts}, ${JSON.stringify(step.data)}`);
  log(`workflow ${first.id}: ${first.status}, ${first.totalAttempts} attempts in all`);
  // Run the same workflow again, as after a crash: no step runs twice, the server answers duplicates.
  const again = await runWorkflow(tx, { id: 'pipeline-nightly-42', steps });
  log(`re-run: ${again.status}; duplicates: ${again.steps.map((step) => step.duplicate).join(', ')}`);
  log(`server side effects: ${JSON.stringify(shop.effects)}`);
  await close();
  return {
    status: first.status,
    rerunDuplicates: again.steps.filter((step) => step.duplicate).length,
    effects: shop.effects,
  };
}
