import { isIPv4, isIPv6 } from 'node:net';
import type { Hono } from 'hono';
import { validationError } from '../core/errors.js';

/** The gateways {@link createGateway} made with an `auth` hook. */
const guarded = new WeakSet<Hono>();

/**
 * Records that `app` checks every request with an `auth` hook, so that {@link assertSafeBind} lets it
 * listen on any address.
 *
 * @example
 * if (settings.auth !== undefined) markGuarded(app);
 */
export function markGuarded(app: Hono): void {
  guarded.add(app);
}

/**
 * Is `hostname` an address only this machine reaches: `localhost`, 127.0.0.0/8 or `::1` (also as
 * an IPv4-mapped `::ffff:127.x.y.z`)?
 *
 * @example
 * isLoopback('127.0.0.1'); // true
 * isLoopback('0.0.0.0'); // false
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost' || host === 'localhost.') return true;
  if (isIPv4(host)) return host.startsWith('127.');
  if (!isIPv6(host)) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host)?.[1];
  return mapped === undefined ? /^(?:0{0,4}:){1,7}0{0,3}1$/.test(host) : mapped.startsWith('127.');
}

/**
 * Refuses to serve `app` on an address other machines may reach (anything but {@link isLoopback})
 * unless it is a gateway made with `auth`, or `allowUnauthenticated` says the open gateway is meant
 * (a private network, an authenticating proxy in front). Throws `MCP_TX_VALIDATION` naming
 * `hostname`, saying how to fix it.
 *
 * @example
 * assertSafeBind(app, '0.0.0.0', false); // throws unless createGateway(tx, { auth }) made app
 */
export function assertSafeBind(app: Hono, hostname: string, allowUnauthenticated: boolean): void {
  if (allowUnauthenticated || guarded.has(app) || isLoopback(hostname)) return;
  throw validationError(
    'options.hostname',
    `"${hostname}" is reachable from other machines, and the gateway has no auth: anyone who reaches it ` +
      'can run every tool. Give createGateway an auth hook, e.g. bearerAuth({ tokens: [...] }), ' +
      'or pass allowUnauthenticated: true to serveGateway if this is meant.',
  );
}
