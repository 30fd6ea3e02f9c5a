import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as wait } from 'node:timers/promises';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  type IdempotencyStore,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  type ResultWithEffect,
  txTool,
  withEffect,
} from '../../src/index.js';

/** Counts one effect of `key`: in memory, or by the store's commit ({@link withEffect}) in another process. */
export type EffectCounter = (
  key: string,
  result: { content: Array<{ type: 'text'; text: string }> },
) => { content: Array<{ type: 'text'; text: string }> } | ResultWithEffect<unknown>;

/** A Streamable HTTP MCP server with sessions, on 127.0.0.1. */
export interface SessionHttpServer {
  readonly url: URL;
  readonly port: number;
  /** Sessions opened so far (one per `initialize`). */
  readonly sessionsOpened: () => number;
  /** Requests answered `404` because their session was unknown. */
  readonly notFound: () => number;
  /**
   * Forgets every session, as an expiry would: later requests with their ids get `404`. Their
   * streams are closed too, unless `closeStreams` is false (a session lost behind a load balancer).
   */
  forget(options?: { closeStreams?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts an MCP server over Streamable HTTP, stateful as the spec has it: a session per
 * `initialize` (its id in `Mcp-Session-Id`), `404 Not Found` for a request whose session it does
 * not know (expired, or from before a restart), `400` for a request without one that is not an
 * `initialize`. Tools: `charge` (txTool on `store`: once per idempotency key; `count` counts its
 * effect) and `read` (`readOnlyHint`); both answer after `workMs`.
 */
export async function startSessionHttpServer(
  options: { port?: number; store?: IdempotencyStore; count?: EffectCounter } = {},
): Promise<SessionHttpServer> {
  const store = options.store ?? memoryIdempotencyStore();
  const count = options.count ?? ((_key, result) => result);
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  let opened = 0;
  let notFound = 0;

  const newServer = () => {
    const server = new McpServer(
      { name: 'sessions', version: '1.0.0' },
      { capabilities: mcpTxServerCapabilities() },
    );
    const shape = { id: z.string(), workMs: z.number().optional() };
    server.registerTool(
      'charge',
      { inputSchema: shape },
      txTool(
        async ({ id, workMs }: { id: string; workMs?: number }) => {
          await wait(workMs ?? 0);
          return count(id, { content: [{ type: 'text', text: JSON.stringify({ id }) }] });
        },
        { tool: 'charge', store, inProgressTtlMs: 500, inProgress: { waitMs: 10_000, pollMs: 10 } },
      ),
    );
    server.registerTool(
      'read',
      { inputSchema: shape, annotations: { readOnlyHint: true } },
      async ({ id, workMs }) => {
        await wait(workMs ?? 0);
        return { content: [{ type: 'text', text: JSON.stringify({ id }) }] };
      },
    );
    return server;
  };

  const reply = (res: ServerResponse, status: number, message: string) =>
    res
      .writeHead(status, { 'content-type': 'application/json' })
      .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message }, id: null }));

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const sessionId = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? await readBody(req) : undefined;
    if (typeof sessionId === 'string') {
      const transport = sessions.get(sessionId);
      if (transport === undefined) {
        notFound += 1;
        reply(res, 404, 'Session not found');
        return;
      }
      await transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      reply(res, 400, 'Bad Request: no session');
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        opened += 1;
        sessions.set(id, transport);
      },
    });
    await newServer().connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const forget = async ({ closeStreams = true }: { closeStreams?: boolean } = {}) => {
    const forgotten = [...sessions.values()];
    sessions.clear();
    if (closeStreams) await Promise.all(forgotten.map((transport) => transport.close()));
    else abandoned.push(...forgotten);
  };
  const abandoned: StreamableHTTPServerTransport[] = [];
  return {
    url: new URL(`http://127.0.0.1:${port}/mcp`),
    port,
    sessionsOpened: () => opened,
    notFound: () => notFound,
    forget,
    async close() {
      await forget();
      await Promise.all(abandoned.map((transport) => transport.close()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** An {@link EffectCounter} committing `HINCRBY <hash> <key> 1` with the key's completion (an `EffectStore`). */
export function redisEffectCounter(hash: string): EffectCounter {
  return (key, result) => withEffect(result, [['HINCRBY', hash, key, 1]]);
}
