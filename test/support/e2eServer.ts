import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import {
  type IdempotencyStore,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  txTool,
} from '../../src/index.js';

/** What the end-to-end server has done, read back through its `stats` tool. */
export interface E2eStats {
  effects: Record<string, number>;
  aborted: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

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
  server.registerTool('stats', { inputSchema: {}, annotations: { readOnlyHint: true } }, async () => ({
    content: [{ type: 'text', text: JSON.stringify(state) }],
  }));
  return server;
}
