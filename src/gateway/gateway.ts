import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { z } from 'zod';
import type { McpTx } from '../client/client.js';
import { listAllTools } from '../client/listTools.js';
import { TxCallOptionsSchema } from '../config/options.js';
import { assertToolName } from '../config/toolInput.js';
import { parseOrThrow, WaitMsSchema } from '../config/validators.js';
import { classifyRejection } from '../core/classify.js';
import { isTxError, TxError, TxErrorCode, validationError } from '../core/errors.js';
import type { TxResult } from '../core/types.js';
import type { HealthMonitor, HealthReport } from '../health/healthMonitor.js';
import { scopedKey } from '../idempotency/fingerprint.js';
import {
  GatewayErrorCode,
  type GatewayMetadata,
  gatewayMetadata,
  problemFor,
  problemResponse,
} from './problem.js';

/** An HTTP field value: printable ASCII, spaces and tabs inside, no CR, LF or other control character. */
const HEADER_VALUE = /^[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?$/;

const GatewayOptionsSchema = z.strictObject({
  /** Decides whether a request may go on: anything but `true` answers 401 (a hook that throws: 500). */
  auth: z
    .custom<AuthHook>(
      (value) => typeof value === 'function',
      'must be a function (c) => boolean | Promise<boolean>',
    )
    .optional(),
  /** The `WWW-Authenticate` challenge a 401 carries. */
  authChallenge: z
    .string()
    .min(1, 'must not be empty')
    .regex(HEADER_VALUE, 'must be a header value: printable ASCII, no CR or LF')
    .default('Bearer'),
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
  /** A `tool_name` not listed lists the server's tools again only if they were listed longer ago than this (0: always). */
  relistToolsMs: WaitMsSchema.default(1_000),
  /** Told of every error answered 500 (to log it; the client never sees it). */
  onError: z
    .custom<ErrorHook>((value) => typeof value === 'function', 'must be a function (error, c) => void')
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
 * - `onError` (none): an {@link ErrorHook} told of every error answered 500, to log it.
 * - `relistToolsMs` (1 000): a `tool_name` the server did not list makes the gateway list the
 *   tools again only when the last listing is older than this (0: on every such request).
 * - `waitForInFlight` (`true`): a request whose key is in flight joins that call; `false`: 409.
 *
 * @example
 * createGateway(tx, {
 *   auth: (c) => c.req.header('x-api-key') === apiKey,
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
 * const auth: AuthHook = async (c) => verifyToken(c.req.header('authorization')?.replace(/^Bearer /, ''));
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

const IdempotencyKeySchema = TxCallOptionsSchema.shape.idempotencyKey.unwrap();

/** The body of `POST /execute-tool` (fields it does not know are refused by {@link assertKnownFields}). */
const ExecuteToolSchema = z.object({
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

/** `application/json`, or a JSON-based type (`application/problem+json`, `application/vnd.api+json`…). */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json$/i;

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
 * The body must be `application/json` (else 415), so that a web page cannot post one cross-origin
 * without a CORS preflight, which the gateway does not answer. A `tool_name` the MCP server does not
 * list (`tools/list`, asked again for a missing name at most every `relistToolsMs`) is refused 400
 * without calling it, so made-up names reach neither the server nor the health monitor. Another
 * method on a route answers 405 with `Allow`. `auth`, when given, guards every route. Every error
 * is an RFC 9457 `application/problem+json` with a `code` (a `TxErrorCode`, or a `GATEWAY_*` code)
 * and never a stack trace; `onError` is told of the 500s. A client that disconnects does not cancel
 * its call: it completes, and with a key its result is kept for the client's retry. Throws
 * `MCP_TX_VALIDATION` naming the option when one is wrong.
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
  const catalog = new ToolCatalog(tx, settings.relistToolsMs);
  const app = new Hono();
  app.onError((error, c) => {
    const response = problemFor(error);
    if (response.status === 500 && settings.onError !== undefined) notify(settings.onError, error, c);
    return response;
  });
  app.notFound((c) =>
    problemResponse(404, GatewayErrorCode.NotFound, `No route for ${c.req.method} ${c.req.path}`),
  );
  if (settings.auth !== undefined) app.use(authenticate(settings.auth, settings.authChallenge));
  app.post(
    '/execute-tool',
    requireJson,
    bodyLimit({
      maxSize: settings.bodyLimit,
      onError: () =>
        problemResponse(
          413,
          GatewayErrorCode.PayloadTooLarge,
          `The request body is larger than ${settings.bodyLimit} bytes`,
        ),
    }),
    async (c) => {
      const request = await readRequest(c);
      await catalog.assertListed(request.tool_name);
      return c.json(await answer(execute, request));
    },
  );
  app.all('/execute-tool', methodNotAllowed('POST'));
  app.get('/health', async (c) => {
    const health = await healthOf(tx, catalog, settings.healthMonitor ?? tx.config.monitor);
    return c.json(health, health.status === 'unavailable' ? 503 : 200);
  });
  app.all('/health', methodNotAllowed('GET, HEAD'));
  return app;
}

/**
 * The MCP server's tool names: listed when first needed, and listed again when a request names a
 * tool not among them and the last listing is older than `relistMs` (by the McpTx's scheduler). One
 * listing at a time: the requests that miss meanwhile share it.
 */
class ToolCatalog {
  private names: ReadonlySet<string> = new Set();
  private listedAt = Number.NEGATIVE_INFINITY;
  private listing: Promise<ReadonlySet<string>> | undefined;
  private readonly clock: SchedulerLike;

  constructor(
    private readonly tx: McpTx,
    private readonly relistMs: number,
  ) {
    this.clock = tx.config.scheduler ?? asyncScheduler;
  }

  /** Lists the tools again, or joins the listing under way. */
  list(): Promise<ReadonlySet<string>> {
    this.listing ??= listToolNames(this.tx)
      .then((names) => {
        this.names = names;
        this.listedAt = this.clock.now();
        return names;
      })
      .finally(() => {
        this.listing = undefined;
      });
    return this.listing;
  }

  /** Throws `MCP_TX_VALIDATION` (400) when the server does not list `tool`, the listing's failure when it fails. */
  async assertListed(tool: string): Promise<void> {
    if (this.names.has(tool)) return;
    const listedLately = this.clock.now() - this.listedAt < this.relistMs;
    const names = listedLately
      ? this.names
      : await this.list().catch((error: unknown) => {
          throw classifyRejection(error, false);
        });
    if (!names.has(tool)) throw validationError('tool_name', `the MCP server has no tool "${tool}"`);
  }
}

/** Refuses a body that is not JSON (415). */
async function requireJson(c: Context, next: () => Promise<void>) {
  const mediaType = c.req.header('content-type')?.split(';')[0]?.trim() ?? '';
  if (JSON_MEDIA_TYPE.test(mediaType)) return next();
  return problemResponse(415, GatewayErrorCode.UnsupportedMediaType, 'The body must be application/json', {
    headers: { Accept: 'application/json' },
  });
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
  assertKnownFields(body);
  const request = parseOrThrow(ExecuteToolSchema, body, '');
  const header = c.req.header('idempotency-key');
  if (header === undefined) return request;
  const key = parseIdempotencyKey(header);
  if (request.idempotency_key !== undefined && request.idempotency_key !== key) {
    throw validationError('idempotency_key', 'differs from the Idempotency-Key header');
  }
  return { ...request, idempotency_key: key };
}

/** Refuses a body field {@link ExecuteToolSchema} does not have: `Invalid args: is not a known field`. */
function assertKnownFields(body: object): void {
  const unknown = Object.keys(body).find((field) => !Object.hasOwn(ExecuteToolSchema.shape, field));
  if (unknown !== undefined) throw validationError(unknown, 'is not a known field');
}

function parseIdempotencyKey(header: string): string {
  const quoted = SF_STRING.exec(header);
  const key = quoted?.[1]?.replace(/\\(["\\])/g, '$1') ?? (BARE_KEY.test(header) ? header : undefined);
  if (key === undefined) {
    throw validationError('Idempotency-Key', 'must be a quoted string ("…") of printable ASCII');
  }
  return parseOrThrow(IdempotencyKeySchema, key, 'Idempotency-Key');
}

async function healthOf(
  tx: McpTx,
  catalog: ToolCatalog,
  monitor: HealthMonitor | undefined,
): Promise<GatewayHealth> {
  const report = monitor?.report() ?? null;
  const tools = await catalog.list().catch(() => undefined);
  const status = tools === undefined ? 'unavailable' : report?.healthy === false ? 'degraded' : 'ok';
  return {
    status,
    server_supports_tx: tx.serverSupportsTx,
    tools: tools === undefined ? [] : [...tools],
    active_requests: tx.activeRequests.size,
    health: report,
  };
}

async function listToolNames(tx: McpTx): Promise<ReadonlySet<string>> {
  const tools = await listAllTools(tx.client, { timeout: tx.config.timeoutMs });
  return new Set(tools.map((tool) => tool.name));
}

function isToolName(name: string): boolean {
  try {
    assertToolName(name);
    return true;
  } catch {
    return false;
  }
}
