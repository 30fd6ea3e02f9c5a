import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { z } from 'zod';
import { parseOrThrow } from '../schemas.js';

const ServeOptionsSchema = z.strictObject({
  /** 0 (the default) takes a spare port; `url` says which. */
  port: z.number().int('must be a whole number').min(0, 'must be 0 to 65535').max(65_535).default(0),
  hostname: z.string().min(1, 'must not be empty').default('127.0.0.1'),
});

/**
 * Options of {@link serveGateway}, all optional:
 *
 * - `port` (0): the port to listen on; 0 takes a spare one (`url` says which).
 * - `hostname` (`'127.0.0.1'`): the address to listen on; `'0.0.0.0'` for every interface.
 *
 * @example
 * await serveGateway(app, { port: 8080, hostname: '0.0.0.0' });
 */
export type ServeGatewayOptions = z.input<typeof ServeOptionsSchema>;

/**
 * A gateway listening on Node's HTTP server.
 *
 * @example
 * const served = await serveGateway(createGateway(tx));
 * console.log(`listening on ${served.url}`);
 * await served.close();
 */
export interface ServedGateway {
  /** Where it listens, e.g. `http://127.0.0.1:41234`. */
  readonly url: URL;
  /** Stops accepting connections, waits for the requests in flight, then closes idle keep-alive sockets. */
  close(): Promise<void>;
}

/**
 * Serves a gateway (or any Hono app) with `@hono/node-server`, on 127.0.0.1 and a spare port unless
 * told otherwise, and resolves once it listens.
 *
 * @example
 * const gateway = await serveGateway(createGateway(tx), { port: 8080, hostname: '0.0.0.0' });
 * console.log(`gateway on ${gateway.url}`);
 * process.on('SIGTERM', () => gateway.close().then(() => tx.close()));
 */
export async function serveGateway(app: Hono, options: ServeGatewayOptions = {}): Promise<ServedGateway> {
  const { port, hostname } = parseOrThrow(ServeOptionsSchema, options, 'options');
  const server = await new Promise<Server>((resolve, reject) => {
    const listening = serve({ fetch: app.fetch, port, hostname }, () => resolve(listening)) as Server;
    listening.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: new URL(`http://${host}:${address.port}`),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeIdleConnections();
      }),
  };
}
