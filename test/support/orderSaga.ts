import type { SagaStep } from '../../src/index.js';

/** The order saga of the tests: reserve stock, take payment, ship; `failAt` makes one step refuse. */
export function orderSteps(order: string, failAt?: string): SagaStep[] {
  const step = (name: string, tool: string, undo?: string): SagaStep => ({
    name,
    action: { tool, args: { order, ...(failAt === name && { fail: true }) } },
    ...(undo && { compensation: { tool: undo, args: (args) => ({ order: String(args.order) }) } }),
  });
  return [step('reserve', 'reserve', 'release'), step('payment', 'pay', 'refund'), step('shipping', 'ship')];
}
