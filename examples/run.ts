/**
 * Runs one example by name: `npm run example -- <name>`; with no name, lists them.
 */
const examples: Record<string, () => Promise<{ main: () => Promise<unknown> }>> = {
  quickstart: () => import('./quickstart.js'),
  workflow: () => import('./workflow.js'),
  'circuit-breaker': () => import('./circuit-breaker.js'),
  tracing: () => import('./tracing.js'),
  'rate-limit': () => import('./rate-limit.js'),
  saga: () => import('./saga.js'),
  'event-sourcing': () => import('./event-sourcing.js'),
  monitoring: () => import('./monitoring.js'),
  'reactive-search': () => import('./reactive-search.js'),
  batch: () => import('./batch.js'),
  gateway: () => import('./gateway.js'),
  stdio: () => import('./stdio/client.js'),
  operators: () => import('./operators.js'),
  'custom-operator': () => import('./custom-operator.js'),
  config: () => import('./config.js'),
  'faulty-transport': () => import('./faulty-transport.js'),
  'streamable-http': () => import('./streamable-http.js'),
  redis: () => import('./redis.js'),
  reconnect: () => import('./reconnect.js'),
  'long-running-task': () => import('./long-running-task.js'),
};

const name = process.argv[2];
const load = name === undefined ? undefined : examples[name];
if (load === undefined) {
  console.log(`usage: npm run example -- <name>\nexamples: ${Object.keys(examples).join(', ')}`);
  process.exitCode = name === undefined ? 0 : 1;
} else {
  await (await load()).main();
}
