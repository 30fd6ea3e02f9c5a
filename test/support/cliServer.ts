import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import {
  type IdempotencyStore,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  txTool,
} from '../../src/index.js';

/** What the CLI tests' server saw: requests that reached `charge` and effects it made, per id. */
export interface CliServerState {
  readonly requests: Record<string, number>;
  readonly effects: Record<string, number>;
}

const bump = (counts: Record<string, number>, id: string) => {
  counts[id] = (counts[id] ?? 0) + 1;
};

/**
 * An MCP-Tx server for the command line's tests: `charge` counts every request per id, then (through
 * `txTool`, exactly once per idempotency key) counts the effect and answers after `ms`; `fail`
 * always answers with an error.
 */
export function createCliServer(
  state: CliServerState = { requests: {}, effects: {} },
  store: IdempotencyStore = memoryIdempotencyStore(),
): McpServer {
  const server = new McpServer(
    { name: 'cli-test', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  const charge = txTool(
    async ({ id, ms }: { id: string; ms?: number }) => {
      bump(state.effects, id);
      await new Promise((resolve) => setTimeout(resolve, ms ?? 0));
      return { content: [{ type: 'text' as const, text: JSON.stringify({ id }) }] };
    },
    { tool: 'charge', store },
  );
  server.registerTool(
    'charge',
    { inputSchema: { id: z.string(), ms: z.number().optional() } },
    (args, extra) => {
      bump(state.requests, args.id);
      return charge(args, extra);
    },
  );
  server.registerTool('fail', { inputSchema: { reason: z.string() } }, async ({ reason }) => {
    throw new Error(reason);
  });
  return server;
}

/** The CLI tests' server over stateless Streamable HTTP on 127.0.0.1, one state and store for all requests. */
export async function startCliHttpServer(): Promise<{
  url: string;
  state: CliServerState;
  close(): Promise<void>;
}> {
  const state: CliServerState = { requests: {}, effects: {} };
  const store = memoryIdempotencyStore();
  const http = createServer((req, res) => {
    const server = createCliServer(state, store);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    state,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
