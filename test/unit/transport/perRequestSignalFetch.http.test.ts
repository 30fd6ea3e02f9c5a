import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { perRequestSignalFetch } from '../../../src/index.js';
import { startHttpServer } from '../../support/httpServer.js';

// A real HTTP server on 127.0.0.1: /quick answers at once, /hang never does, /broken breaks off
// its body, /streaming sends the start of a body that never ends.
const server = createServer((req, res) => {
  if (req.url === '/quick') res.end('ok');
  if (req.url === '/broken') res.writeHead(200).write('partial', () => res.destroy());
  if (req.url === '/streaming') res.writeHead(200).write('start');
});
let base = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('perRequestSignalFetch', () => {
  it('leaves one listener on the shared signal however many requests used it', async () => {
    const shared = new AbortController();
    const fetchOwn = perRequestSignalFetch();
    const bodies = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetchOwn(`${base}/quick`, { signal: shared.signal }).then((r) => r.text()),
      ),
    );
    expect(bodies.every((body) => body === 'ok')).toBe(true);
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(1);
  });

  it('lets go of a request whose body was cancelled or broke off: the shared abort reaches only one still going', async () => {
    const shared = new AbortController();
    const { fetchOwn, sent } = recordingSignals();
    await (await fetchOwn(`${base}/quick`, { signal: shared.signal })).body?.cancel();
    await expect((await fetchOwn(`${base}/broken`, { signal: shared.signal })).text()).rejects.toThrow();
    await fetchOwn(`${base}/streaming`, { signal: shared.signal });
    shared.abort(new Error('transport closed'));
    expect(sent.map(({ url, signal }) => [url, signal.aborted])).toEqual([
      ['/quick', false],
      ['/broken', false],
      ['/streaming', true],
    ]);
  });

  it('over real Streamable HTTP, holds only the GET stream after many notifications (202) and requests', async () => {
    const mcp = await startHttpServer({ stateless: false });
    const { fetchOwn, sent } = recordingSignals();
    const client = new Client(
      { name: 'test', version: '1' },
      { capabilities: { roots: { listChanged: true } } },
    );
    await client.connect(new StreamableHTTPClientTransport(mcp.url, { fetch: fetchOwn }));
    for (const _ of Array.from({ length: 20 })) await client.listTools();
    for (const _ of Array.from({ length: 20 })) await client.sendRootsListChanged(); // answered 202, no body
    const abortedBefore = new Set(sent.filter(({ signal }) => signal.aborted));
    await client.close(); // aborts the requests still held under the transport's signal
    const held = sent.filter((request) => request.signal.aborted && !abortedBefore.has(request));
    expect(sent.length).toBeGreaterThan(40);
    expect(held.map(({ method }) => method)).toEqual(['GET']);
    await mcp.close();
  });

  it('still aborts the requests in flight when the shared signal aborts', async () => {
    const shared = new AbortController();
    const pending = perRequestSignalFetch()(`${base}/hang`, { signal: shared.signal });
    setTimeout(() => shared.abort(new Error('transport closed')), 20);
    await expect(pending).rejects.toThrow();
  });
});

/** A `perRequestSignalFetch` over the real `fetch` that records each request's own signal. */
function recordingSignals() {
  const sent: { url: string; method: string; signal: AbortSignal }[] = [];
  const recording: FetchLike = (url, init) => {
    if (init?.signal)
      sent.push({ url: new URL(url).pathname, method: init.method ?? 'GET', signal: init.signal });
    return fetch(url, init);
  };
  return { fetchOwn: perRequestSignalFetch(recording), sent };
}
