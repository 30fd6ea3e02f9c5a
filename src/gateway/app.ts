import { type Context, Hono } from 'hono';
import * as z from 'zod';
import type { McpTx } from '../client/mcpTx.js';
import { parseOrThrow, WaitMsSchema } from '../config/validators.js';
import { validationError } from '../core/errors.js';
import type { HealthMonitor } from '../health/healthMonitor.js';
import { markGuarded } from './bindCheck.js';
import { toolExecutor } from './executeTool.js';
import { gatewayHealth, healthStatusCode } from './health.js';
import { GatewayErrorCode, problemFor, problemResponse } from './problem.js';
import { isToolName, limitBody, readExecuteToolRequest, requireJson } from './request.js';
import { ToolCatalog } from './toolCatalog.js';

/** An HTTP field value: printable ASCII, spaces and tabs inside, no CR, LF or other control character. */
const HEADER_VALUE = /^[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?$/;

const GatewayOptionsSchema = z.strictObject({
  auth: z
    .custom<AuthHook>(
      (value) => typeof value === 'function',
      'must be a function (c) => boolean | Promise<boolean>',
    )
    .optional(),
  authChallenge: z
    .string()
    .min(1, 'must not be empty')
    .regex(HEADER_VALUE, 'must be a header value: printable ASCII, no CR or LF')
    .default('Bearer'),
  bodyLimit: z
    .number({ message: 'must be a number of bytes' })
    .int('must be a whole number of bytes')
    .positive('must be greater than 0')
    .default(1_048_576),
  healthMonitor: z
    .custom<HealthMonitor>(
      (value) => typeof (value as HealthMonitor | null)?.report === 'function',
      'must be a HealthMonitor',
    )
    .optional(),
  relistToolsMs: WaitMsSchema.default(1_000),
  healthToolsTtlMs: WaitMsSchema.default(5_000),
  exposeTools: z.boolean().default(false),
  tools: z
    .array(
      z.string({ message: 'must be tool names' }).refine(isToolName, 'must be tool names (no whitespace)'),
      { message: 'must be an array of tool names' },
    )
    .min(1, 'must name at least one tool (leave it out to offer every tool)')
    .optional(),
  onError: z
    .custom<ErrorHook>((value) => typeof value === 'function', 'must be a function (error, c) => void')
    .optional(),
  waitForInFlight: z.boolean().default(true),
});

/**
 * Options of {@link createGateway}, all optional:
 *
 * - `auth` (none: open): an {@link AuthHook} run before every route, e.g. {@link bearerAuth};
 *   anything but `true` answers 401 (a hook that throws: 500). Without it, {@link serveGateway}
 *   listens only on loopback unless told `allowUnauthenticated`.
 * - `authChallenge` (`'Bearer'`): the `WWW-Authenticate` header of a 401.
 * - `bodyLimit` (1 048 576): the largest request body in bytes; larger answers 413.
 * - `exposeTools` (`false`): `GET /health` shows the tool names to anyone; otherwise only with
 *   `auth` (every caller then passed it), and without `auth` it leaves `tools` out.
 * - `healthToolsTtlMs` (5 000): how long `GET /health` reuses the last `tools/list` (its tools or
 *   its failure) before asking the server again (0: every time), so that a flood of health checks
 *   does not become a flood of upstream calls.
 * - `healthMonitor` (the McpTx's `monitor`): whose report `GET /health` shows.
 * - `onError` (none): an {@link ErrorHook} told of every error answered 500, to log it (the client
 *   never sees it).
 * - `relistToolsMs` (1 000): a `tool_name` the server did not list makes the gateway list the
 *   tools again only when the last listing is older than this (0: on every such request).
 * - `tools` (every tool): the only tools offered; another is refused 400 like a tool the server does
 *   not list, without a call, and `GET /health` shows only these.
 * - `waitForInFlight` (`true`): a request whose key is in flight joins that call; `false`: 409.
 *
 * @example
 * createGateway(tx, {
 *   auth: bearerAuth({ tokens: [process.env.GATEWAY_TOKEN as string] }),
 *   tools: ['get_stock', 'create_order'],
 *   bodyLimit: 65_536,
 *   onError: (error, c) => logger.error({ error, path: c.req.path }, 'gateway error'),
 * });
 */
export type GatewayOptions = z.input<typeof GatewayOptionsSchema>;

/**
 * Says whether a request may go on (read its headers from `c.req`). Anything but `true` answers
 * 401; a hook that throws answers 500.
 *
 * @example
 * const auth: AuthHook = async (c) => verifyJwt(c.req.header('authorization')?.replace(/^Bearer /, ''));
 */
export type AuthHook = (c: Context) => boolean | Promise<boolean>;

/**
 * Told of an error the gateway answered 500 (a bug, an auth hook that threw), after the answer is
 * made: the client gets a bare problem, the operator the error. A hook that throws changes nothing.
 *
 * @example
 * const onError: ErrorHook = (error, c) => console.error(`${c.req.method} ${c.req.path}`, error);
 */
export type ErrorHook = (error: unknown, c: Context) => void | Promise<void>;

/**
 * An HTTP gateway in front of an {@link McpTx}: a Hono app with
 *
 * - `POST /execute-tool` `{ tool_name, arguments?, idempotency_key? }` (or the key in an
 *   `Idempotency-Key` header, IETF draft "The Idempotency-Key HTTP Header Field"): runs
 *   `tx.call` with the default pipeline (retry, dedupe, …) and answers 200
 *   `{ success, result, metadata: { request_id, attempts, duplicate, … } }`; a tool that reported an
 *   error answers 200 with `success: false`. With the McpTx's dedupe on (the default), a key replayed
 *   gives the stored result with `duplicate: true`, the same key with other arguments 422, and a key in
 *   flight joins that call — or, with `waitForInFlight: false`, is refused 409 while it runs here.
 * - `GET /health`: the MCP server's tools (to authenticated callers, or with `exposeTools`; the
 *   listing kept `healthToolsTtlMs`), whether it speaks MCP-Tx, the McpTx's connection, and the
 *   health monitor's report; 503 with `status: 'reconnecting'` while the McpTx is (re)connecting to
 *   the server (the server is not asked), 503 `unavailable` when the server does not answer or the
 *   connection is closed.
 *
 * The body must be `application/json` (else 415), so that a web page cannot post one cross-origin
 * without a CORS preflight, which the gateway does not answer. A `tool_name` the MCP server does not
 * list (`tools/list`, asked again for a missing name at most every `relistToolsMs`) is refused 400
 * without calling it, so made-up names reach neither the server nor the health monitor. Another
 * method on a route answers 405 with `Allow`. `auth`, when given, guards every route; `tools`
 * narrows the tools offered. Every error is an RFC 9457 `application/problem+json` with a `code` (a
 * `TxErrorCode`, or a `GATEWAY_*` code) and never a stack trace; `onError` is told of the 500s. A client that disconnects does not cancel
 * its call: it completes, and with a key its result is kept for the client's retry. Throws
 * `MCP_TX_VALIDATION` naming the option when one is wrong.
 *
 * @example
 * const app = createGateway(tx, { auth: bearerAuth({ tokens: [process.env.GATEWAY_TOKEN as string] }) });
 * const { url } = await serveGateway(app, { port: 8080 });
 * // curl -H 'Idempotency-Key: "order-42"' -d '{"tool_name":"create_order","arguments":{"item":"fig"}}' $url/execute-tool
 */
export function createGateway(tx: McpTx, options: GatewayOptions = {}): Hono {
  if (typeof (tx as Partial<McpTx> | null)?.call !== 'function') {
    throw validationError('tx', 'must be an McpTx (createMcpTx(client))');
  }
  const settings = parseOrThrow(GatewayOptionsSchema, options, 'options');
  const execute = toolExecutor(tx, settings);
  const catalog = new ToolCatalog(
    tx,
    settings.relistToolsMs,
    settings.tools === undefined ? undefined : new Set(settings.tools),
  );
  const view = {
    toolsTtlMs: settings.healthToolsTtlMs,
    showTools: settings.exposeTools || settings.auth !== undefined,
  };
  const app = new Hono();
  app.onError((error, c) => {
    const response = problemFor(error);
    if (response.status === 500 && settings.onError !== undefined) notify(settings.onError, error, c);
    return response;
  });
  app.notFound((c) =>
    problemResponse(404, GatewayErrorCode.NotFound, `No route for ${c.req.method} ${c.req.path}`),
  );
  if (settings.auth !== undefined) {
    app.use(authenticate(settings.auth, settings.authChallenge));
    markGuarded(app);
  }
  app.post('/execute-tool', requireJson, limitBody(settings.bodyLimit), async (c) => {
    const request = await readExecuteToolRequest(c);
    await catalog.assertListed(request.tool_name);
    return c.json(await execute(request));
  });
  app.all('/execute-tool', methodNotAllowed('POST'));
  app.get('/health', async (c) => {
    const health = await gatewayHealth(tx, catalog, settings.healthMonitor ?? tx.config.monitor, view);
    return c.json(health, healthStatusCode(health));
  });
  app.all('/health', methodNotAllowed('GET, HEAD'));
  return app;
}

function authenticate(auth: AuthHook, challenge: string) {
  return async (c: Context, next: () => Promise<void>) => {
    if ((await auth(c)) === true) return next();
    return problemResponse(401, GatewayErrorCode.Unauthorized, 'Missing or invalid credentials', {
      headers: { 'WWW-Authenticate': challenge },
    });
  };
}

/** Answers another method on a route 405, with the `Allow`ed ones. */
function methodNotAllowed(allow: string) {
  return (c: Context) =>
    problemResponse(405, GatewayErrorCode.MethodNotAllowed, `${c.req.method} ${c.req.path}: use ${allow}`, {
      headers: { Allow: allow },
    });
}

/** Calls the `onError` hook after the answer is made; a hook that throws or rejects changes nothing. */
function notify(hook: ErrorHook, error: unknown, c: Context): void {
  void Promise.resolve()
    .then(() => hook(error, c))
    .catch(() => undefined);
}
