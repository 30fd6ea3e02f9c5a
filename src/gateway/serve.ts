import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Http2Bindings, type HttpBindings, serve } from '@hono/node-server';
import type { Hono } from 'hono';
import * as z from 'zod';
import { parseOrThrow, WaitMsSchema } from '../config/validators.js';
import { assertSafeBind } from './bindCheck.js';
import { GatewayErrorCode, problemResponse } from './problem.js';

const ServeOptionsSchema = z.strictObject({
  port: z.number().int('must be a whole number').min(0, 'must be 0 to 65535').max(65_535).default(0),
  hostname: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  closeTimeoutMs: WaitMsSchema.default(10_000),
  allowUnauthenticated: z.boolean().default(false),
});

/**
 * Options of {@link serveGateway}, all optional:
 *
 * - `port` (0): the port to listen on; 0 takes a spare one (`url` says which).
 * - `hostname` (`'127.0.0.1'`): the address to listen on; `'0.0.0.0'` for every interface. An
 *   address other than loopback (`localhost`, 127.0.0.0/8, `::1`) needs a gateway made with `auth`,
 *   or `allowUnauthenticated`.
 * - `closeTimeoutMs` (10 000): how long `close()` lets the requests in flight finish before it
 *   closes their connections.
 * - `allowUnauthenticated` (`false`): serve an app without `auth` on an address other machines
 *   reach (a private network, or an authenticating proxy in front).
 *
 * @example
 * await serveGateway(app, { port: 8080, hostname: '0.0.0.0', closeTimeoutMs: 30_000 });
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
  /**
   * Shuts down gracefully: stops accepting connections and closes the idle ones; the requests in
   * flight finish and are answered with `Connection: close`; a request that arrives on an open
   * connection meanwhile is refused 503 `GATEWAY_SHUTTING_DOWN` (its tool does not run). After
   * `closeTimeoutMs` every connection left is closed (their calls still complete). Resolves once
   * every connection is closed; calling it again gives the same promise.
   */
  close(): Promise<void>;
}

/**
 * Serves a gateway (or any Hono app) with `@hono/node-server`, on 127.0.0.1 and a spare port unless
 * told otherwise, and resolves once it listens. Refuses (`MCP_TX_VALIDATION` naming `hostname`)
 * to listen on an address other than loopback unless the app is a gateway made with `auth` or
 * `allowUnauthenticated` is `true`: an open gateway runs every tool for anyone who reaches it.
 *
 * @example
 * const auth = bearerAuth({ tokens: [process.env.GATEWAY_TOKEN as string] });
 * const gateway = await serveGateway(createGateway(tx, { auth }), { port: 8080, hostname: '0.0.0.0' });
 * console.log(`gateway on ${gateway.url}`);
 * process.on('SIGTERM', () => gateway.close().then(() => tx.close()));
 */
export async function serveGateway(app: Hono, options: ServeGatewayOptions = {}): Promise<ServedGateway> {
  const { port, hostname, closeTimeoutMs, allowUnauthenticated } = parseOrThrow(
    ServeOptionsSchema,
    options,
    'options',
  );
  assertSafeBind(app, hostname, allowUnauthenticated);
  let closing = false;
  const fetch = (request: Request, env: HttpBindings | Http2Bindings) =>
    closing ? shuttingDown() : app.fetch(request, env);
  const server = await new Promise<Server>((resolve, reject) => {
    const listening = serve({ fetch, port, hostname }, () => resolve(listening)) as Server;
    listening.once('error', reject);
  });
  const inFlight = trackResponses(server, () => closing);
  let closed: Promise<void> | undefined;
  return {
    url: urlOf(server),
    close: () => {
      closing = true;
      closed ??= drain(server, inFlight, closeTimeoutMs);
      return closed;
    },
  };
}

function shuttingDown(): Response {
  return problemResponse(503, GatewayErrorCode.ShuttingDown, 'The gateway is shutting down; retry later');
}

/**
 * The responses not sent yet. While closing, each new one closes its connection once sent, and a
 * connection left idle by a response (one whose headers went out before closing) is closed too.
 */
function trackResponses(server: Server, isClosing: () => boolean): Set<ServerResponse> {
  const inFlight = new Set<ServerResponse>();
  // First: the app may answer at once, within its own listener.
  server.prependListener('request', (_request, response: ServerResponse) => {
    if (isClosing()) response.shouldKeepAlive = false;
    inFlight.add(response);
    response.once('close', () => {
      inFlight.delete(response);
      if (isClosing()) server.closeIdleConnections();
    });
  });
  return inFlight;
}

/** Stops accepting, lets the responses in flight end with `Connection: close`, and closes every connection left after `graceMs`. */
function drain(server: Server, inFlight: ReadonlySet<ServerResponse>, graceMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close((error) => {
      clearTimeout(deadline);
      if (error === undefined) resolve();
      else reject(error);
    });
    for (const response of inFlight) response.shouldKeepAlive = false;
    server.closeIdleConnections();
  });
}

function urlOf(server: Server): URL {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return new URL(`http://${host}:${address.port}`);
}
