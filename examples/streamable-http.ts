import { randomUUID } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { createMcpTx, mcpTxClientCapabilities, perRequestSignalFetch } from 'mcp-tx';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { createDemoShop } from './demo-server.js';

/**
 * The demo shop over Streamable HTTP on 127.0.0.1, and a client whose transport fetches with
 * `perRequestSignalFetch()`: a burst of 200 calls, 32 at a time. Then what it is for, measured: 200
 * requests under one shared signal, as the transport makes them, leave one `abort` listener on it
 * with `perRequestSignalFetch()` — and, with the plain `fetch` of Node 20, about one per request,
 * until garbage collection (past 1 500, `MaxListenersExceededWarning`).
 */
export async function main(log: (line: string) => void = console.log) {
  const shop = createDemoShop();
  const serverTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() });
  await shop.server.connect(serverTransport);
  const http = createServer((req, res) => {
    if (req.url === '/ping') res.end('pong');
    else serverTransport.handleRequest(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const url = new URL(`${base}/mcp`);

  const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  const transport = new StreamableHTTPClientTransport(url, { fetch: perRequestSignalFetch() });
  await client.connect(transport);
  const tx = createMcpTx(client);
  const results = await lastValueFrom(
    from(Array.from({ length: 200 }, (_, n) => n)).pipe(
      mergeMap((n) => tx.call$('ping', { n }), 32),
      toArray(),
    ),
  );
  log(`${results.length} calls over ${url}, each request with a signal of its own`);

  /** `abort` listeners left on one shared signal after 200 requests made with `fetchLike`. */
  const listenersLeft = async (fetchLike: FetchLike) => {
    const shared = new AbortController();
    for (let index = 0; index < 200; index++) {
      await (await fetchLike(`${base}/ping`, { signal: shared.signal })).text();
    }
    return getEventListeners(shared.signal, 'abort').length;
  };
  const listeners = {
    fetch: await listenersLeft(fetch),
    perRequestSignalFetch: await listenersLeft(perRequestSignalFetch()),
  };
  log(`abort listeners left on a shared signal by 200 requests: ${JSON.stringify(listeners)}`);

  await tx.close();
  await shop.server.close();
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
  return { completed: results.length, listeners };
}
