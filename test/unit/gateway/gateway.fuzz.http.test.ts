import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerAuth, createGateway, type ServedGateway, serveGateway } from '../../../src/gateway/index.js';
import { connectFixture, type Fixture } from '../../support/fixture.js';
import { fuzz } from '../core/fuzz.js';

const TOKEN = 'fuzz-token-0123456789abcdef';
const ALLOWED = ['counter', 'echo', 'greet'];

/** One request as the fuzzer makes it: header values and body are raw bytes (latin1, 0–255). */
interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

/** What came back: the status of the first response, its headers (lower-case names) and body. */
interface RawReply {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** Any byte (control characters, CR, LF, NUL and the latin1 half included). */
const byte = fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code));
const bytes = (maxLength: number) => fc.string({ unit: byte, maxLength });
/** Sometimes huge: past the 16 KiB Node allows for a request's headers. */
const hugeBytes = fc
  .tuple(bytes(8), fc.integer({ min: 1, max: 2_500 }))
  .map(([text, times]) => (text || 'k').repeat(times));
const key = fc.string({ minLength: 1, maxLength: 12 });

const idempotencyKey = fc.oneof(
  { weight: 3, arbitrary: key.map((value) => JSON.stringify(value)) },
  key,
  bytes(40),
  hugeBytes,
);
const contentType = fc.oneof(
  { weight: 4, arbitrary: fc.constant('application/json') },
  fc.constantFrom(
    'application/json; charset=utf-8',
    'application/problem+json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    '',
  ),
  bytes(30),
);
const authorization = fc.oneof(
  { weight: 6, arbitrary: fc.constant(`Bearer ${TOKEN}`) },
  fc.constantFrom('Bearer undefined', 'Bearer ', `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`),
  bytes(40).map((text) => `Bearer ${text}`),
);

const toolName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ALLOWED) },
  fc.constantFrom('boom', 'nope', '', ' counter', 'counter\u0000'),
  fc.string({ maxLength: 300 }),
  fc.jsonValue(),
);
const toolArguments = fc.oneof(
  { weight: 3, arbitrary: fc.record({ key: fc.constantFrom('a', 'b', 'c') }) },
  fc.record({ name: fc.string({ maxLength: 8 }) }),
  fc.jsonValue({ maxDepth: 3 }),
);
const executeBody = fc.record(
  {
    tool_name: toolName,
    arguments: toolArguments,
    idempotency_key: fc.oneof(key, fc.jsonValue({ maxDepth: 1 })),
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  { weight: 6, arbitrary: executeBody.map((value) => utf8AsBytes(JSON.stringify(value))) },
  fc.json({ maxDepth: 3 }).map(utf8AsBytes),
  bytes(200),
  fc.constant(''),
);

/** Anything: most of these are malformed somewhere. */
const wildRequest: fc.Arbitrary<RawRequest> = fc
  .record({
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constant('POST') },
      fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
    ),
    path: fc.oneof(
      { weight: 6, arbitrary: fc.constant('/execute-tool') },
      fc.constantFrom('/health', '/execute-tool/', '/EXECUTE-TOOL', '/execute-tool?x=1'),
      fc.stringMatching(/^\/[a-z0-9_.%-]{0,12}$/),
    ),
    contentType: fc.option(contentType, { nil: undefined }),
    authorization: fc.option(authorization, { freq: 8, nil: undefined }),
    idempotencyKey: fc.option(idempotencyKey, { freq: 2, nil: undefined }),
    body,
  })
  .map(({ method, path, contentType, authorization, idempotencyKey, body }) => ({
    method,
    path,
    headers: [
      ...(contentType === undefined ? [] : [['Content-Type', contentType] as const]),
      ...(authorization === undefined ? [] : [['Authorization', authorization] as const]),
      ...(idempotencyKey === undefined ? [] : [['Idempotency-Key', idempotencyKey] as const]),
    ],
    body,
  }));

/**
 * A well-formed call of an allowed tool with arguments it takes, its key (from a small pool, so that
 * replays and conflicts happen) in the header or the body, or none.
 */
const validRequest: fc.Arbitrary<RawRequest> = fc
  .record({
    call: fc.oneof(
      fc.record({
        tool_name: fc.constant('counter'),
        arguments: fc.record({ key: fc.constantFrom('a', 'b') }),
      }),
      fc.record({
        tool_name: fc.constant('echo'),
        arguments: fc.record({ value: fc.jsonValue({ maxDepth: 2 }) }),
      }),
      fc.record({
        tool_name: fc.constant('greet'),
        arguments: fc.record({ name: fc.constantFrom('x', 'y') }),
      }),
    ),
    key: fc.option(fc.constantFrom('k1', 'k2', 'k3', 'k4'), { nil: undefined }),
    inHeader: fc.boolean(),
  })
  .map(({ call, key, inHeader }) => ({
    method: 'POST',
    path: '/execute-tool',
    headers: [
      ['Content-Type', 'application/json'],
      ['Authorization', `Bearer ${TOKEN}`],
      ...(key !== undefined && inHeader ? [['Idempotency-Key', `"${key}"`] as const] : []),
    ],
    body: utf8AsBytes(
      JSON.stringify(key !== undefined && !inHeader ? { ...call, idempotency_key: key } : call),
    ),
  }));

const request = fc.oneof({ weight: 3, arbitrary: wildRequest }, validRequest);

/** The UTF-8 bytes of `text`, one character per byte, as the raw request writes them. */
function utf8AsBytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * Sends `request` on a new connection, byte for byte (no client checks its headers), and reads the
 * first response. `Content-Length` and `Connection: close` come first, so that bytes a fuzzed
 * header smuggles in cannot make the server wait for more.
 */
function send(url: URL, { method, path, headers, body }: RawRequest): Promise<RawReply> {
  const head = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${url.host}`,
    `Content-Length: ${body.length}`,
    'Connection: close',
    ...headers.map(([name, value]) => `${name}: ${value}`),
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${method} ${path}`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(parseReply(Buffer.concat(chunks).toString('latin1'), method)));
    socket.end(Buffer.from(`${head}\r\n\r\n${body}`, 'latin1'));
  });
}

function parseReply(raw: string, method: string): RawReply {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN);
  const headers = new Map(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  const rest = method === 'HEAD' ? '' : raw.slice(end + 4);
  const text = headers.get('transfer-encoding') === 'chunked' ? dechunk(rest) : rest;
  return { status, headers, body: Buffer.from(text, 'latin1').toString('utf8') };
}

function dechunk(raw: string): string {
  let text = '';
  for (let at = 0; ; ) {
    const lineEnd = raw.indexOf('\r\n', at);
    const size = Number.parseInt(raw.slice(at, lineEnd), 16);
    if (!(size > 0)) return text;
    text += raw.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** The tool and idempotency key (as the server got it in `_meta.mcp_tx`) of a call the server saw. */
function keyedCall(seen: Fixture['seen'][number] | undefined): string | undefined {
  const key = (seen?.meta?.mcp_tx as { idempotency_key?: string } | undefined)?.idempotency_key;
  return key === undefined ? undefined : `${seen?.tool}\u0000${key}`;
}

let fixture: Fixture;
let gateway: ServedGateway;
beforeAll(async () => {
  fixture = await connectFixture();
  const app = createGateway(fixture.tx, { auth: bearerAuth({ tokens: [TOKEN] }), tools: ALLOWED });
  gateway = await serveGateway(app);
});
afterAll(async () => {
  await gateway.close();
  await fixture.close();
});

describe('the gateway under arbitrary requests', () => {
  it('answers a 4xx problem (or a bare 400/431 from the HTTP parser) to anything malformed, never a 5xx, and runs a tool only for a valid request, at most once per key', async () => {
    const ranFor = new Set<string>();
    await fc.assert(
      fc.asyncProperty(request, async (sent) => {
        const before = fixture.seen.length;
        const reply = await send(gateway.url, sent);
        const calls = fixture.seen.length - before;

        expect(reply.status).toBeGreaterThanOrEqual(200);
        expect(reply.status).toBeLessThan(500);
        if (reply.status >= 400) {
          const fromParser = !reply.headers.has('content-type') && [400, 431].includes(reply.status);
          if (!fromParser) expect(reply.headers.get('content-type')).toBe('application/problem+json');
          if (!fromParser && sent.method !== 'HEAD')
            expect(JSON.parse(reply.body)).toMatchObject({ status: reply.status });
          expect(calls).toBe(0);
          return;
        }
        expect(reply.status).toBe(200);
        const executed = sent.path.startsWith('/execute-tool');
        if (executed) expect(JSON.parse(reply.body)).toHaveProperty('success');
        expect(calls).toBeLessThanOrEqual(executed ? 1 : 0);
        if (calls === 0) return;
        const call = keyedCall(fixture.seen.at(-1));
        if (call === undefined) return;
        expect(ranFor.has(call)).toBe(false);
        ranFor.add(call);
      }),
      fuzz(300),
    );
  });
});
