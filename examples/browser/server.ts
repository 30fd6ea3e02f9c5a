/**
 * The MCP server of the browser example, over Streamable HTTP with CORS: `search` (a slow prefix
 * search that stops when the client cancels it) and `mark` (a keyed effect counted per key), both
 * wrapped in `txTool`; `GET /stats` tells what the server saw (cancelled searches, effects per key).
 * Run: `PORT=3001 node --import tsx --conditions=mcp-tx-source examples/browser/server.ts`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { mcpTxServerCapabilities, memoryIdempotencyStore, txTool } from 'mcp-tx';
import { z } from 'zod';

const WORDS = ['rx', 'rxjs', 'reactive', 'react', 'reason', 'retry', 'redis', 'replay', 'request', 'result'];
const SEARCH_MS = Number(process.env.SEARCH_MS ?? 300);

/** What the server saw since it started. */
const stats = {
  started: [] as string[],
  cancelled: [] as string[],
  answered: [] as string[],
  effects: {} as Record<string, number>,
};
const store = memoryIdempotencyStore();

function createShop(): McpServer {
  const server = new McpServer(
    { name: 'browser-shop', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool(
    'search',
    { inputSchema: { q: z.string() }, annotations: { readOnlyHint: true } },
    txTool(
      async ({ q }, { signal }) => {
        stats.started.push(q);
        try {
          await sleep(SEARCH_MS, undefined, { signal }); // stops when the client cancels the call
        } catch (reason) {
          stats.cancelled.push(q);
          throw reason;
        }
        stats.answered.push(q);
        const hits = WORDS.filter((word) => word.startsWith(q.toLowerCase()));
        return { content: [{ type: 'text', text: JSON.stringify({ q, hits }) }] };
      },
      { tool: 'search', store },
    ),
  );
  server.registerTool(
    'mark',
    { inputSchema: { key: z.string() } },
    txTool(
      async ({ key }) => {
        stats.effects[key] = (stats.effects[key] ?? 0) + 1; // the effect: must happen once per key
        return { content: [{ type: 'text', text: JSON.stringify({ key }) }] };
      },
      { tool: 'mark', store },
    ),
  );
  return server;
}

/** CORS for a page on another origin: the session header must be allowed in and exposed out. */
function allowCors(res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS');
  res.setHeader(
    'Access-Control-Allow-Headers',
    'Content-Type, Accept, Authorization, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID',
  );
  res.setHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id, Mcp-Protocol-Version');
}

const SESSION_NOT_FOUND = JSON.stringify({
  jsonrpc: '2.0',
  error: { code: -32001, message: 'Session not found' },
  id: null,
});
const sessions = new Map<string, StreamableHTTPServerTransport>();

/** The transport of the request's session; a new session's for a request without one (`initialize`). */
async function transportFor(req: IncomingMessage): Promise<StreamableHTTPServerTransport | undefined> {
  const id = req.headers['mcp-session-id'];
  if (typeof id === 'string') return sessions.get(id);
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (sessionId) => void sessions.set(sessionId, transport),
  });
  transport.onclose = () => void (transport.sessionId && sessions.delete(transport.sessionId));
  await createShop().connect(transport);
  handleCancellations(transport);
  return transport;
}

/** How many of a session's latest cancellations are remembered, for requests they overtook. */
const REMEMBERED_CANCELLATIONS = 64;

/**
 * Two things the SDK leaves to the HTTP server about cancellations:
 *
 * - It answers nothing to a cancelled request, so the response stream of its POST would stay open —
 *   and hold one of the six HTTP/1.1 connections a browser opens to an origin: after a few
 *   cancelled searches the page would stall. Close that stream when the cancellation arrives.
 * - A cancellation is a POST of its own and may overtake the request it cancels (another
 *   connection): the SDK, which does not know that request yet, ignores it, and the stale search
 *   would run to the end. Remember the latest cancellations; a request that arrives after its own
 *   is cancelled as soon as it is delivered.
 */
function handleCancellations(transport: StreamableHTTPServerTransport): void {
  const deliver = transport.onmessage;
  const cancellations = new Map<string | number, JSONRPCMessage>();
  transport.onmessage = (message, extra) => {
    deliver?.(message, extra);
    if (!('method' in message)) return;
    if (message.method === 'notifications/cancelled') {
      const requestId = (message.params as { requestId?: string | number } | undefined)?.requestId;
      if (requestId === undefined) return;
      transport.closeSSEStream(requestId);
      cancellations.set(requestId, message);
      for (const oldest of cancellations.keys()) {
        if (cancellations.size <= REMEMBERED_CANCELLATIONS) break;
        cancellations.delete(oldest);
      }
      return;
    }
    if (!('id' in message)) return;
    const overtaken = cancellations.get(message.id);
    if (overtaken === undefined) return;
    deliver?.(overtaken, extra);
    transport.closeSSEStream(message.id);
  };
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  allowCors(res);
  if (req.method === 'OPTIONS') return void res.writeHead(204).end();
  if (req.url === '/stats')
    return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(stats));
  if (req.url !== '/mcp') return void res.writeHead(404).end();
  const transport = await transportFor(req);
  // An unknown session (this server restarted): 404, and the client starts a new session.
  if (transport === undefined) return void res.writeHead(404).end(SESSION_NOT_FOUND);
  await transport.handleRequest(req, res);
}

const port = Number(process.env.PORT ?? 3001);
createServer((req, res) => {
  handle(req, res).catch(() => res.headersSent || res.writeHead(500).end());
}).listen(port, '127.0.0.1', () => console.log(`MCP server on http://127.0.0.1:${port}/mcp`));
