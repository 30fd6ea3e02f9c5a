import { z } from 'zod';
import {
  type EventStore,
  MemoryEventStore,
  memoryIdempotencyStore,
  type NewTxEvent,
  type TxConfig,
  txTool,
} from '../../src/index.js';
import { connectFixture, type Fixture } from './fixture.js';

/** The order saga's tools on a real McpServer over InMemoryTransport, and what they did. */
export interface OrderShop {
  readonly fixture: Fixture;
  /** Effects per `<tool>:<order>`, as the e2e server counts them. */
  readonly effects: Record<string, number>;
  /** Handler runs per tool, effects or not (a txTool duplicate does not run the handler). */
  readonly runs: Record<string, number>;
  /** Lets the held `pay` answer (and every later one at once). */
  releasePay(): void;
}

/**
 * Connects a client to a server with the tools of `orderSteps` (reserve, pay, ship, release,
 * refund), each wrapped in `txTool` on one store; a key in progress is answered
 * `MCP_TX_IN_PROGRESS` at once. With `holdPay`, `pay` has its effect at once but answers (or
 * refuses, with `fail: true`) only after `releasePay()`: a client timeout meanwhile leaves the
 * step's outcome unknown to the client.
 */
export async function connectOrderShop(
  options: { config?: TxConfig; serverTx?: boolean; holdPay?: boolean } = {},
): Promise<OrderShop> {
  const store = memoryIdempotencyStore();
  const effects: Record<string, number> = {};
  const runs: Record<string, number> = {};
  let releasePay = () => {};
  const payReleased = options.holdPay
    ? new Promise<void>((resolve) => {
        releasePay = resolve;
      })
    : Promise.resolve();
  const fixture = await connectFixture({
    serverDedupes: true, // its tools are txTools
    ...(options.serverTx !== undefined && { serverTx: options.serverTx }),
    ...(options.config && { config: options.config }),
    register: (server) => {
      for (const tool of ['reserve', 'pay', 'ship', 'release', 'refund'])
        server.registerTool(
          tool,
          { inputSchema: { order: z.string(), fail: z.boolean().optional() } },
          txTool(
            async ({ order, fail }) => {
              runs[tool] = (runs[tool] ?? 0) + 1;
              if (!fail) effects[`${tool}:${order}`] = (effects[`${tool}:${order}`] ?? 0) + 1;
              if (tool === 'pay') await payReleased;
              if (fail) throw new Error(`${tool} refused order ${order}`);
              return {
                content: [{ type: 'text', text: JSON.stringify({ [`${tool}Id`]: `${tool}-${order}` }) }],
              };
            },
            { tool, store, inProgress: { waitMs: 0, pollMs: 1 } },
          ),
        );
    },
  });
  return { fixture, effects, runs, releasePay: () => releasePay() };
}

/**
 * A memory event store that calls `beforeAppend` with each event before storing it; what
 * `beforeAppend` throws, `append` rejects with (a full disk, a Redis blip).
 */
export function watchedEventStore(beforeAppend: (event: NewTxEvent) => void): EventStore {
  const events = new MemoryEventStore();
  return {
    read$: (filter) => events.read$(filter),
    append: async (event) => {
      beforeAppend(event);
      return events.append(event);
    },
  };
}
