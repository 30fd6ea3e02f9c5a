import { createHash, timingSafeEqual } from 'node:crypto';
import * as z from 'zod';
import { parseOrThrow } from '../config/validators.js';
import type { AuthHook } from './app.js';

/**
 * Shortest token {@link bearerAuth} accepts: long enough that `undefined` (an unset variable in a
 * template literal) or a word cannot be one.
 *
 * @example
 * const token = randomBytes(32).toString('base64url'); // 43 characters, well over MIN_BEARER_TOKEN_LENGTH
 */
export const MIN_BEARER_TOKEN_LENGTH = 16;

/** A bearer token as RFC 6750 writes it (`b64token`): letters, digits, `-._~+/`, then `=` padding. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

const BearerAuthOptionsSchema = z.strictObject({
  tokens: z
    .array(
      z
        .string({ message: 'must be strings (is a token variable unset?)' })
        .min(MIN_BEARER_TOKEN_LENGTH, `must be at least ${MIN_BEARER_TOKEN_LENGTH} characters`)
        .regex(B64TOKEN, 'must be bearer tokens: letters, digits and -._~+/ (then = padding)'),
      { message: 'must be an array of tokens' },
    )
    .min(1, 'must hold at least one token'),
});

/**
 * Options of {@link bearerAuth}: `tokens`, the tokens a request may present (at least one; each at
 * least {@link MIN_BEARER_TOKEN_LENGTH} characters of RFC 6750 `b64token`). Several let a token be
 * rotated: add the new one, move the clients, remove the old one.
 *
 * @example
 * const options: BearerAuthOptions = { tokens: [process.env.GATEWAY_TOKEN as string] };
 */
export type BearerAuthOptions = z.input<typeof BearerAuthOptionsSchema>;

/** `Authorization: Bearer <token>`: the scheme in any case, then the token (RFC 6750 §2.1). */
const AUTHORIZATION = /^Bearer +(\S+) *$/i;

/**
 * An {@link AuthHook} that lets through a request whose `Authorization: Bearer <token>` header holds
 * one of `tokens`. The token is compared in constant time (the SHA-256 digests of the presented token
 * and of every configured one, with `crypto.timingSafeEqual`, every token compared), so timing tells
 * nothing of how much of it matched. Checked when made: no token, an empty or unset one
 * (`undefined`, `''`, or the string `"undefined"` a template literal makes of an unset variable: any
 * token shorter than {@link MIN_BEARER_TOKEN_LENGTH}) throws `MCP_TX_VALIDATION` naming `tokens`, so that a
 * missing secret stops the gateway at start-up instead of letting `Bearer undefined` in.
 *
 * @example
 * const app = createGateway(tx, { auth: bearerAuth({ tokens: [process.env.GATEWAY_TOKEN as string] }) });
 * await serveGateway(app, { port: 8080, hostname: '0.0.0.0' });
 */
export function bearerAuth(options: BearerAuthOptions): AuthHook {
  const { tokens } = parseOrThrow(BearerAuthOptionsSchema, options, 'options');
  const digests = tokens.map(digest);
  return (c) => {
    const presented = AUTHORIZATION.exec(c.req.header('authorization') ?? '')?.[1];
    if (presented === undefined) return false;
    const candidate = digest(presented);
    // Every token is compared, so that which one matched (or none) takes the same time.
    return digests.reduce((matched, known) => timingSafeEqual(known, candidate) || matched, false);
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
