import { setTimeout as wait } from 'node:timers/promises';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { lastValueFrom, Subject, switchMap, toArray } from 'rxjs';
import { z } from 'zod';
import {
  type IdempotencyStore,
  type McpTx,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  txTool,
} from '../../src/index.js';

/** What the end-to-end server has done, read back through its `stats` tool. */
export interface E2eStats {
  effects: Record<string, number>;
  aborted: number;
}

/** Waits `ms`, or less when `signal` aborts (the request was cancelled). */
const sleep = (ms: number, signal?: AbortSignal) => wait(ms, undefined, { signal }).catch(() => undefined);

/**
 * The server the end-to-end tests run in a child process (stdio) or over Streamable HTTP:
 * `charge` (txTool: the effect at once, the answer after `answerAfterMs`), `slow` (waits, counts
 * cancellations) and `stats`. One `state` can back several server instances (stateless HTTP).
 */
export function createE2eServer(
  state: E2eStats = { effects: {}, aborted: 0 },
  store: IdempotencyStore = memoryIdempotencyStore(),
): McpServer {
  const server = new McpServer(
    { name: 'e2e', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool(
    'charge',
    { inputSchema: { id: z.string(), answerAfterMs: z.number().optional() } },
    txTool(
      async ({ id, answerAfterMs }) => {
        state.effects[id] = (state.effects[id] ?? 0) + 1;
        await sleep(answerAfterMs ?? 0);
        return { content: [{ type: 'text', text: JSON.stringify({ id }) }] };
      },
      { tool: 'charge', store, inProgress: { waitMs: 5_000, pollMs: 5 } },
    ),
  );
  server.registerTool('slow', { inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
    await sleep(ms, extra.signal);
    if (extra.signal.aborted) state.aborted += 1;
    return { content: [{ type: 'text', text: 'done' }] };
  });
  // An order saga's tools: each counts its effects per order under `<tool>:<order>`.
  const sagaTool = (tool: string) =>
    server.registerTool(
      tool,
      { inputSchema: { order: z.string(), fail: z.boolean().optional() } },
      txTool(
        async ({ order, fail }) => {
          if (fail) throw new Error(`${tool} refused order ${order}`);
          state.effects[`${tool}:${order}`] = (state.effects[`${tool}:${order}`] ?? 0) + 1;
          return { content: [{ type: 'text', text: JSON.stringify({ [`${tool}Id`]: `${tool}-${order}` }) }] };
        },
        { tool, store },
      ),
    );
  for (const tool of ['reserve', 'pay', 'ship', 'release', 'refund']) sagaTool(tool);
  server.registerTool('stats', { inputSchema: {}, annotations: { readOnlyHint: true } }, async () => ({
    content: [{ type: 'text', text: JSON.stringify(state) }],
  }));
  return server;
}

/**
 * Types "search-as-you-type" into `slow` through switchMap: two stale 5 s calls, then a quick one.
 * Resolves with what came out (only the last call's result, if the stale ones were cancelled).
 */
export function typeAhead(tx: McpTx): Promise<unknown[]> {
  const inputs = new Subject<number>();
  const outputs = lastValueFrom(
    inputs.pipe(
      switchMap((ms) => tx.call$('slow', { ms })),
      toArray(),
    ),
  );
  for (const ms of [5_000, 5_000, 10]) inputs.next(ms);
  inputs.complete();
  return outputs;
}
