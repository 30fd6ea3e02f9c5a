import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import * as z from 'zod';
import { type TxCallOptions, TxCallOptionsSchema } from '../client/options.js';
import { assertToolName } from '../config/toolInput.js';
import { parseOrThrow } from '../config/validators.js';
import { validationError } from '../core/errors.js';
import { GatewayErrorCode, problemResponse } from './problem.js';

const IdempotencyKeySchema = TxCallOptionsSchema.shape.idempotencyKey.unwrap();

/** The body of `POST /execute-tool` (fields it does not know are refused by {@link assertKnownFields}). */
const ExecuteToolSchema = z.object({
  tool_name: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .refine(isToolName, 'must be 1 to 256 characters without whitespace or control characters'),
  arguments: z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).default({}),
  idempotency_key: IdempotencyKeySchema.optional(),
});

/**
 * A validated `POST /execute-tool` request: its body, with the key of the `Idempotency-Key` header.
 *
 * @example
 * const request: ExecuteToolRequest = { tool_name: 'get_stock', arguments: { item: 'fig' }, idempotency_key: 'k-1' };
 */
export type ExecuteToolRequest = z.output<typeof ExecuteToolSchema>;

/** `application/json`, or a JSON-based type (`application/problem+json`, `application/vnd.api+json`…). */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json$/i;

/** An `Idempotency-Key` header: a Structured Field string (`"abc"`, RFC 8941), or, leniently, a bare token. */
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/;
const BARE_KEY = /^[\x21\x23-\x7e]+$/;

/**
 * Refuses a body that is not JSON (415), so that a web page cannot post one cross-origin without a
 * CORS preflight.
 *
 * @example
 * app.post('/execute-tool', requireJson, handler);
 */
export async function requireJson(c: Context, next: () => Promise<void>) {
  const mediaType = c.req.header('content-type')?.split(';')[0]?.trim() ?? '';
  if (JSON_MEDIA_TYPE.test(mediaType)) return next();
  return problemResponse(415, GatewayErrorCode.UnsupportedMediaType, 'The body must be application/json', {
    headers: { Accept: 'application/json' },
  });
}

/**
 * Refuses a body larger than `maxBytes` (413), streamed or not.
 *
 * @example
 * app.post('/execute-tool', limitBody(65_536), handler);
 */
export function limitBody(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () =>
      problemResponse(
        413,
        GatewayErrorCode.PayloadTooLarge,
        `The request body is larger than ${maxBytes} bytes`,
      ),
  });
}

/**
 * The validated body, with the key from the `Idempotency-Key` header or the body (both: they must
 * agree). Throws `MCP_TX_VALIDATION` (400) naming the field that is wrong.
 *
 * @example
 * const request = await readExecuteToolRequest(c);
 * await tx.call(request.tool_name, request.arguments, callOptionsOf(request));
 */
export async function readExecuteToolRequest(c: Context): Promise<ExecuteToolRequest> {
  const request = parseOrThrow(ExecuteToolSchema, await readJsonObject(c), '');
  const header = c.req.header('idempotency-key');
  if (header === undefined) return request;
  const key = parseIdempotencyKey(header);
  if (request.idempotency_key !== undefined && request.idempotency_key !== key) {
    throw validationError('idempotency_key', 'differs from the Idempotency-Key header');
  }
  return { ...request, idempotency_key: key };
}

/**
 * The options of the request's `tx.call`: its idempotency key, if it has one.
 *
 * @example
 * callOptionsOf({ tool_name: 'charge', arguments: {}, idempotency_key: 'order-42' }); // { idempotencyKey: 'order-42' }
 */
export function callOptionsOf(request: ExecuteToolRequest): TxCallOptions | undefined {
  const { idempotency_key } = request;
  return idempotency_key === undefined ? undefined : { idempotencyKey: idempotency_key };
}

/** The body as a JSON object of known fields. */
async function readJsonObject(c: Context): Promise<object> {
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
  return body;
}

/** Refuses a body field {@link ExecuteToolSchema} does not have: `Invalid <field>: is not a known field`. */
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

/**
 * Is `name` a tool name the gateway takes: 1 to 256 characters without whitespace or control
 * characters?
 *
 * @example
 * isToolName('get_stock'); // true
 * isToolName('get stock'); // false
 */
export function isToolName(name: string): boolean {
  try {
    assertToolName(name);
    return true;
  } catch {
    return false;
  }
}
