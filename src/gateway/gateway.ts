import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { McpTx } from '../client.js';
import { isTxError, TxError, TxErrorCode, validationError } from '../errors.js';
import type { HealthMonitor, HealthReport } from '../health/healthMonitor.js';
import { scopedKey } from '../idempotency/fingerprint.js';
import { listAllTools } from '../listTools.js';
import { parseOrThrow, TxCallOptionsSchema } from '../schemas.js';
import type { TxResult } from '../types.js';
import { assertToolName } from '../validate.js';
import {
  GatewayErrorCode,
  type GatewayMetadata,
  gatewayMetadata,
  problemFor,
  problemResponse,
} from './problem.js';

const GatewayOptionsSchema = z.strictObject({
  /** Decides whether a request may go on: anything but `true` answers 401 (a hook that throws: 500). */
  auth: z
    .custom<AuthHook>(
      (value) => typeof value === 'function',
      'must be a function (c) => boolean | Promise<boolean>',
    )
    .optional(),
  /** The `WWW-Authenticate` challenge a 401 carries. */
  authChallenge: z.string().min(1, 'must not be empty').default('Bearer'),
  /** Largest request body accepted, in bytes (larger: 413). */
  bodyLimit: z
    .number({ message: 'must be a number of bytes' })
    .int('must be a whole number of bytes')
    .positive('must be greater than 0')
    .default(1_048_576),
  /** Whose `report()` `GET /health` shows; defaults to the McpTx's `monitor`. */
  healthMonitor: z
    .custom<HealthMonitor>(
      (value) => typeof (value as HealthMonitor | null)?.report === 'function',
      'must be a HealthMonitor',
    )
    .optional(),
  /** A request whose idempotency key is in flight through this gateway joins that call (true) or gets 409 (false). */
  waitForInFlight: z.boolean().default(true),
});

/**
 * Options of {@link createGateway}, all optional:
 *
 * - `auth` (none: open): an {@link AuthHook} run before every route; anything but `true` answers 401.
 * - `authChallenge` (`'Bearer'`): the `WWW-Authenticate` header of a 401.
 * - `bodyLimit` (1 048 576): the largest request body in bytes; larger answers 413.
 * - `healthMonitor` (the McpTx's `monitor`): whose report `GET /health` shows.
 * - `waitForInFlight` (`true`): a request whose key is in flight joins that call; `false`: 409.
 *
 * @example
 * createGateway(tx, { auth: (c) => c.req.header('x-api-key') === apiKey, bodyLimit: 65_536 });
 */
export type GatewayOptions = z.input<typeof GatewayOptionsSchema>;

/**
 * Says whether a request may go on (read its headers from `c.req`). Anything but `true` answers
 * 401; a hook that throws answers 500.
 *
 * @example
 * const auth: AuthHook = async (c) => verifyToken(c.req.header('authorization')?.replace(/^Bearer /, ''));
 */
export type AuthHook = (c: Context) => boolean | Promise<boolean>;

const IdempotencyKeySchema = TxCallOptionsSchema.shape.idempotencyKey.unwrap();

/** The body of `POST /execute-tool`. */
const ExecuteToolSchema = z.strictObject({
  tool_name: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .refine(isToolName, 'must be 1 to 256 characters without whitespace or control characters'),
  arguments: z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).default({}),
  idempotency_key: IdempotencyKeySchema.optional(),
});
type ExecuteTool = z.output<typeof ExecuteToolSchema>;

/**
 * What `POST /execute-tool` answers, 200: the tool's result (its `data`), or the error it reported
 * (`success: false`). Other failures answer a {@link ProblemDetails}.
 *
 * @example
 * const body = JSON.stringify({ tool_name: 'get_stock', arguments: { item: 'fig' } });
 * const response = await fetch(`${url}/execute-tool`, { method: 'POST', body });
 * const answer = (await response.json()) as ExecuteToolResponse;
 * if (answer.success) console.log(answer.result, answer.metadata.attempts);
 */
export type ExecuteToolResponse =
  | { readonly success: true; readonly result: unknown; readonly metadata: GatewayMetadata }
  | {
      readonly success: false;
      readonly result: null;
      readonly error: { readonly code: string; readonly message: string };
      readonly metadata?: GatewayMetadata;
    };

/**
 * What `GET /health` answers (200, or 503 when `status` is `unavailable`).
 *
 * @example
 * const health = (await (await fetch(`${url}/health`)).json()) as GatewayHealth;
 * console.log(health.status, health.tools.length, health.active_requests);
 */
export interface GatewayHealth {
  /** `ok`; `degraded` when the health monitor alerts; `unavailable` (503) when the MCP server does not answer. */
  readonly status: 'ok' | 'degraded' | 'unavailable';
  readonly server_supports_tx: boolean;
  /** The MCP server's tools (`tools/list`, every page). */
  readonly tools: readonly string[];
  readonly active_requests: number;
  readonly health: HealthReport | null;
}

/** An `Idempotency-Key` header: a Structured Field string (`"abc"`, RFC 8941), or, leniently, a bare token. */
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/;
const BARE_KEY = /^[\x21\x23-\x7e]+$/;

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
 * - `GET /health`: the MCP server's tools, whether it speaks MCP-Tx, and the health monitor's report.
 *
 * `auth`, when given, guards both routes. Every error is an RFC 9457 `application/problem+json` with
 * a `code` (a `TxErrorCode`, or a `GATEWAY_*` code) and never a stack trace. A client that disconnects
 * does not cancel its call: it completes, and with a key its result is kept for the client's retry.
 * Throws `MCP_TX_VALIDATION` naming the option when one is wrong.
 *
 * @example
 * const app = createGateway(tx, { auth: (c) => c.req.header('authorization') === `Bearer ${token}` });
 * const { url } = await serveGateway(app, { port: 8080 });
 * // curl -H 'Idempotency-Key: "order-42"' -d '{"tool_name":"create_order","arguments":{"item":"fig"}}' $url/execute-tool
 */
export function createGateway(tx: McpTx, options: GatewayOptions = {}): Hono {
  if (typeof (tx as Partial<McpTx> | null)?.call !== 'function') {
    throw validationError('tx', 'must be an McpTx (createMcpTx(client))');
  }
  const settings = parseOrThrow(GatewayOptionsSchema, options, 'options');
  const execute = settings.waitForInFlight ? callThrough(tx) : refuseInFlight(callThrough(tx));
  const app = new Hono();
  app.onError((error) => problemFor(error));
  app.notFound((c) =>
    problemResponse(404, GatewayErrorCode.NotFound, `No route for ${c.req.method} ${c.req.path}`),
  );
  if (settings.auth !== undefined) app.use(authenticate(settings.auth, settings.authChallenge));
  app.post(
    '/execute-tool',
    bodyLimit({
      maxSize: settings.bodyLimit,
      onError: () =>
        problemResponse(
          413,
          GatewayErrorCode.PayloadTooLarge,
          `The request body is larger than ${settings.bodyLimit} bytes`,
        ),
    }),
    async (c) => c.json(await answer(execute, await readRequest(c))),
  );
  app.get('/health', async (c) => {
    const health = await healthOf(tx, settings.healthMonitor ?? tx.config.monitor);
    return c.json(health, health.status === 'unavailable' ? 503 : 200);
  });
  return app;
}

type Execute = (request: ExecuteTool) => Promise<TxResult>;

function callThrough(tx: McpTx): Execute {
  return ({ tool_name, arguments: args, idempotency_key }) =>
    tx.call(tool_name, args, idempotency_key === undefined ? undefined : { idempotencyKey: idempotency_key });
}

/** Refuses (409) a keyed request while a call with the same tool and key is in flight through this gateway. */
function refuseInFlight(execute: Execute): Execute {
  const inFlight = new Set<string>();
  return async (request) => {
    if (request.idempotency_key === undefined) return execute(request);
    const key = scopedKey(request.tool_name, request.idempotency_key);
    if (inFlight.has(key)) {
      throw new TxError(
        TxErrorCode.InProgress,
        `A call of ${request.tool_name} with idempotency key "${request.idempotency_key}" is in progress; retry later`,
        { retryable: true, field: 'idempotency_key' },
      );
    }
    inFlight.add(key);
    try {
      return await execute(request);
    } finally {
      inFlight.delete(key);
    }
  };
}

function authenticate(auth: AuthHook, challenge: string) {
  return async (c: Context, next: () => Promise<void>) => {
    if ((await auth(c)) === true) return next();
    return problemResponse(401, GatewayErrorCode.Unauthorized, 'Missing or invalid credentials', {
      headers: { 'WWW-Authenticate': challenge },
    });
  };
}

/** Runs the call; a tool that answered with an error is a 200 `success: false`, any other failure a problem. */
async function answer(execute: Execute, request: ExecuteTool): Promise<ExecuteToolResponse> {
  try {
    const { data, meta } = await execute(request);
    return { success: true, result: data, metadata: gatewayMetadata(meta) };
  } catch (error) {
    if (!isTxError(error, TxErrorCode.ToolError)) throw error;
    return {
      success: false,
      result: null,
      error: { code: error.code, message: error.message },
      ...(error.meta === undefined ? {} : { metadata: gatewayMetadata(error.meta) }),
    };
  }
}

/** The validated body, with the key from the `Idempotency-Key` header or the body (both: they must agree). */
async function readRequest(c: Context): Promise<ExecuteTool> {
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch {
    throw validationError('body', 'must be valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw validationError('body', 'must be a JSON object');
  }
  const request = parseOrThrow(ExecuteToolSchema, body, '');
  const header = c.req.header('idempotency-key');
  if (header === undefined) return request;
  const key = parseIdempotencyKey(header);
  if (request.idempotency_key !== undefined && request.idempotency_key !== key) {
    throw validationError('idempotency_key', 'differs from the Idempotency-Key header');
  }
  return { ...request, idempotency_key: key };
}

function parseIdempotencyKey(header: string): string {
  const quoted = SF_STRING.exec(header);
  const key = quoted?.[1]?.replace(/\\(["\\])/g, '$1') ?? (BARE_KEY.test(header) ? header : undefined);
  if (key === undefined) {
    throw validationError('Idempotency-Key', 'must be a quoted string ("…") of printable ASCII');
  }
  return parseOrThrow(IdempotencyKeySchema, key, 'Idempotency-Key');
}

async function healthOf(tx: McpTx, monitor: HealthMonitor | undefined): Promise<GatewayHealth> {
  const report = monitor?.report() ?? null;
  const tools = await listToolNames(tx).catch(() => undefined);
  const status = tools === undefined ? 'unavailable' : report?.healthy === false ? 'degraded' : 'ok';
  return {
    status,
    server_supports_tx: tx.serverSupportsTx,
    tools: tools ?? [],
    active_requests: tx.activeRequests.size,
    health: report,
  };
}

async function listToolNames(tx: McpTx): Promise<string[]> {
  const tools = await listAllTools(tx.client, { timeout: tx.config.timeoutMs });
  return tools.map((tool) => tool.name);
}

function isToolName(name: string): boolean {
  try {
    assertToolName(name);
    return true;
  } catch {
    return false;
  }
}
