import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { perRequestSignalFetch } from '../../src/index.js';

// A real HTTP server on 127.0.0.1: /quick answers at once, /hang never does.
const server = createServer((req, res) => {
  if (req.url === '/quick') res.end('ok');
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

  it('still aborts the requests in flight when the shared signal aborts', async () => {
    const shared = new AbortController();
    const pending = perRequestSignalFetch()(`${base}/hang`, { signal: shared.signal });
    setTimeout(() => shared.abort(new Error('transport closed')), 20);
    await expect(pending).rejects.toThrow();
  });
});
