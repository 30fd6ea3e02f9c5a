import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { memoryIdempotencyStore } from '../../src/index.js';
import { createE2eServer, type E2eStats } from './e2eServer.js';

/** The e2e server over Streamable HTTP on 127.0.0.1 (a spare port). */
export interface HttpServer {
  readonly url: URL;
  readonly state: E2eStats;
  /** `notifications/cancelled` messages the server received. */
  readonly cancellations: () => number;
  close(): Promise<void>;
}

/**
 * Starts the e2e server over Streamable HTTP: stateful (a session and a server per client) or
 * stateless (a server and a transport per request). All of them share one state and one
 * idempotency store, as replicas behind a shared store would.
 */
export async function startHttpServer(options: { stateless: boolean }): Promise<HttpServer> {
  const state: E2eStats = { effects: {}, aborted: 0 };
  const store = memoryIdempotencyStore();
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  let cancellations = 0;
  const countCancellations = (transport: StreamableHTTPServerTransport) => {
    const deliver = transport.onmessage;
    transport.onmessage = (message, extra) => {
      if ('method' in message && message.method === 'notifications/cancelled') cancellations += 1;
      deliver?.(message, extra);
    };
  };

  const statefulTransportFor = async (req: IncomingMessage) => {
    const sessionId = req.headers['mcp-session-id'];
    const known = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (known) return known;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await createE2eServer(state, store).connect(transport);
    countCancellations(transport);
    return transport;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (!options.stateless) {
      await (await statefulTransportFor(req)).handleRequest(req, res);
      return;
    }
    const server = createE2eServer(state, store);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    countCancellations(transport);
    await transport.handleRequest(req, res);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/mcp`),
    state,
    cancellations: () => cancellations,
    async close() {
      await Promise.all([...sessions.values()].map((transport) => transport.close()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
