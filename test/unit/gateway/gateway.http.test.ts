import { connect, type Socket } from 'node:net';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Context } from 'hono';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isLoopback } from '../../../src/gateway/bindCheck.js';
import {
  bearerAuth,
  createGateway,
  type GatewayOptions,
  type ServedGateway,
  type ServeGatewayOptions,
  serveGateway,
} from '../../../src/gateway/index.js';
import { httpStatusOf } from '../../../src/gateway/problem.js';
import {
  CircuitBreaker,
  createMcpTx,
  HealthMonitor,
  type McpTx,
  mcpTxServerCapabilities,
  type TxConfig,
  TxError,
  TxErrorCode,
  tokenBucket,
} from '../../../src/index.js';
import { connectFixture, type Fixture, until } from '../../support/fixture.js';
import { advanceVirtual } from '../../support/virtualTime.js';

/** A tool that counts its runs and answers only when the test releases it: a call held in flight. */
function heldTool() {
  let runs = 0;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    runs: () => runs,
    release: () => release(),
    register(server: McpServer) {
      server.registerTool('hold', { inputSchema: { order: z.string() } }, async ({ order }) => {
        runs += 1;
        await released;
        return { content: [{ type: 'text', text: JSON.stringify({ order, runs }) }] };
      });
    },
  };
}

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

let fixture: Fixture | undefined;
let gateway: ServedGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await fixture?.close();
  gateway = undefined;
  fixture = undefined;
});

async function open(
  options: {
    config?: TxConfig;
    gateway?: GatewayOptions;
    serve?: ServeGatewayOptions;
    register?: (server: McpServer) => void;
  } = {},
) {
  fixture = await connectFixture({ config: options.config, register: options.register });
  gateway = await serveGateway(createGateway(fixture.tx, options.gateway), options.serve);
  return { fixture, gateway };
}

async function request(path: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(new URL(path, gateway?.url), init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

function post(body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return request('/execute-tool', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** An RFC 9457 problem with this status and code, and nothing that looks like a stack trace. */
function expectProblem(reply: Reply, status: number, code: string): Record<string, unknown> {
  expect(reply.status).toBe(status);
  expect(reply.headers.get('content-type')).toBe('application/problem+json');
  expect(reply.body).toMatchObject({ type: 'about:blank', status, code });
  expect(typeof reply.body.title).toBe('string');
  expect(typeof reply.body.detail).toBe('string');
  expect(reply.text).not.toMatch(/\bat .*:\d+:\d+/);
  expect(reply.body).not.toHaveProperty('stack');
  return reply.body;
}

describe('POST /execute-tool', () => {
  it('runs the tool through the pipeline and answers its result with the call metadata', async () => {
    const { fixture } = await open();
    const reply = await post({ tool_name: 'counter', arguments: { key: 'a' } });

    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    expect(reply.body).toMatchObject({
      success: true,
      result: { count: 1 },
      metadata: {
        attempts: 1,
        duplicate: false,
        ack: true,
        processed: true,
        status: 'completed',
        server_supports_tx: true,
      },
    });
    const { request_id } = reply.body.metadata as { request_id: string };
    expect(fixture.seen[0]?.meta?.mcp_tx).toMatchObject({ request_id });
  });

  it('replays an Idempotency-Key: the second answer is a duplicate and the tool ran once', async () => {
    const { fixture } = await open();
    const call = { tool_name: 'counter', arguments: { key: 'order-1' } };
    const first = await post(call, { 'Idempotency-Key': '"order-1"' });
    const second = await post(call, { 'Idempotency-Key': '"order-1"' });

    expect(first.body).toMatchObject({
      success: true,
      result: { count: 1 },
      metadata: { duplicate: false, idempotency_key: 'order-1', attempts: 1 },
    });
    expect(second.body).toMatchObject({
      success: true,
      result: { count: 1 },
      metadata: { duplicate: true, idempotency_key: 'order-1', attempts: 0 },
    });
    expect(fixture.effects.get('order-1')).toBe(1);
    expect(fixture.seen[0]?.meta?.mcp_tx).toMatchObject({ idempotency_key: 'order-1' });
  });

  it('takes the key from the body too, and from a bare header token', async () => {
    const { fixture } = await open();
    const call = { tool_name: 'counter', arguments: { key: 'k' } };
    await post({ ...call, idempotency_key: 'order-2' });
    const replay = await post(call, { 'Idempotency-Key': 'order-2' });
    const both = await post({ ...call, idempotency_key: 'order-2' }, { 'Idempotency-Key': '"order-2"' });

    expect(replay.body).toMatchObject({ metadata: { duplicate: true } });
    expect(both.body).toMatchObject({ metadata: { duplicate: true } });
    expect(fixture.effects.get('k')).toBe(1);
  });

  it('refuses a body key that differs from the header (400, naming the field)', async () => {
    const { fixture } = await open();
    const reply = await post(
      { tool_name: 'counter', arguments: { key: 'k' }, idempotency_key: 'a' },
      { 'Idempotency-Key': '"b"' },
    );

    const problem = expectProblem(reply, 400, TxErrorCode.Validation);
    expect(problem).toMatchObject({ field: 'idempotency_key' });
    expect(problem.detail).toContain('Idempotency-Key header');
    expect(fixture.seen).toEqual([]);
  });

  it('refuses a malformed Idempotency-Key header', async () => {
    await open();
    const reply = await post({ tool_name: 'counter', arguments: { key: 'k' } }, { 'Idempotency-Key': '"a' });
    expect(expectProblem(reply, 400, TxErrorCode.Validation)).toMatchObject({ field: 'Idempotency-Key' });
  });

  it('answers 422 when a key is reused with other arguments, and does not run the tool again', async () => {
    const { fixture } = await open();
    await post({ tool_name: 'counter', arguments: { key: 'x' } }, { 'Idempotency-Key': '"order-3"' });
    const reply = await post(
      { tool_name: 'counter', arguments: { key: 'y' } },
      { 'Idempotency-Key': '"order-3"' },
    );

    const problem = expectProblem(reply, 422, TxErrorCode.IdempotencyConflict);
    expect(problem.detail).toContain('order-3');
    expect(problem.metadata).toMatchObject({ idempotency_key: 'order-3', status: 'rejected' });
    expect(fixture.effects.get('y')).toBeUndefined();
  });

  it('answers 409 while the key is in flight when waitForInFlight is off, then replays once done', async () => {
    const held = heldTool();
    await open({ gateway: { waitForInFlight: false }, register: held.register });
    const call = { tool_name: 'hold', arguments: { order: 'o1' } };
    const first = post(call, { 'Idempotency-Key': '"order-4"' });
    await until(() => held.runs() === 1);

    const refused = await post(call, { 'Idempotency-Key': '"order-4"' });
    expectProblem(refused, 409, TxErrorCode.InProgress);
    expect(refused.body).toMatchObject({ field: 'idempotency_key' });

    held.release();
    expect((await first).body).toMatchObject({ success: true, metadata: { duplicate: false } });
    const replay = await post(call, { 'Idempotency-Key': '"order-4"' });
    expect(replay.body).toMatchObject({ success: true, result: { runs: 1 }, metadata: { duplicate: true } });
    expect(held.runs()).toBe(1);
  });

  it('joins a call in flight for the same key by default: two requests, one execution', async () => {
    const held = heldTool();
    const { fixture } = await open({ register: held.register });
    const call = { tool_name: 'hold', arguments: { order: 'o2' } };
    const first = post(call, { 'Idempotency-Key': '"order-5"' });
    await until(() => held.runs() === 1);
    const second = post(call, { 'Idempotency-Key': '"order-5"' });
    await until(() => fixture.tx.activeRequests.size === 2);
    held.release();

    const replies = await Promise.all([first, second]);
    expect(replies.map((reply) => reply.status)).toEqual([200, 200]);
    expect(replies.map((reply) => (reply.body.metadata as { duplicate: boolean }).duplicate)).toEqual([
      false,
      true,
    ]);
    expect(held.runs()).toBe(1);
  });

  it('answers 413 to a body over the limit, declared or streamed', async () => {
    const { fixture } = await open({ gateway: { bodyLimit: 256 } });
    const big = { tool_name: 'echo', arguments: { value: 'x'.repeat(1_000) } };

    expectProblem(await post(big), 413, 'GATEWAY_PAYLOAD_TOO_LARGE');
    const bytes = new TextEncoder().encode(JSON.stringify(big));
    const streamed = await request('/execute-tool', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(bytes.subarray(0, 200));
          controller.enqueue(bytes.subarray(200));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expectProblem(streamed, 413, 'GATEWAY_PAYLOAD_TOO_LARGE');
    expect(fixture.seen).toEqual([]);
  });

  it('answers 400 naming the field to bad JSON and bad bodies, before anything is sent', async () => {
    const { fixture } = await open();
    const cases: Array<[unknown, string, string]> = [
      ['{"tool_name": ', 'body', 'must be valid JSON'],
      ['[1, 2]', 'body', 'must be a JSON object'],
      [{ arguments: {} }, 'tool_name', 'is required'],
      [{ tool_name: 42 }, 'tool_name', 'must be a string'],
      [{ tool_name: 'two words' }, 'tool_name', 'whitespace'],
      [{ tool_name: 'counter', arguments: [1] }, 'arguments', 'must be a JSON object'],
      [{ tool_name: 'counter', args: {} }, 'args', 'is not a known field'],
      [{ tool_name: 'counter', idempotency_key: '' }, 'idempotency_key', 'must not be empty'],
    ];
    for (const [body, field, reason] of cases) {
      const problem = expectProblem(await post(body), 400, TxErrorCode.Validation);
      expect(problem).toMatchObject({ field });
      expect(problem.detail).toContain(`Invalid ${field}: `);
      expect(problem.detail).toContain(reason);
    }
    expect(fixture.seen).toEqual([]);
  });

  it('answers a tool that reported an error 200 with success: false and the metadata', async () => {
    await open();
    const reply = await post({ tool_name: 'boom', arguments: { message: 'card declined' } });

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      success: false,
      result: null,
      error: { code: TxErrorCode.ToolError, message: 'card declined' },
      metadata: { attempts: 1, processed: false, status: 'failed' },
    });
  });

  it('refuses a tool the server does not list 400 without calling or monitoring it; lists again on a miss at most every relistToolsMs', async () => {
    const scheduler = new VirtualTimeScheduler();
    const monitor = new HealthMonitor();
    const { fixture } = await open({ config: { scheduler, monitor } });
    const listings = () =>
      fixture.received.filter((message) => 'method' in message && message.method === 'tools/list').length;
    expect((await post({ tool_name: 'counter', arguments: { key: 'a' } })).status).toBe(200);
    const listed = listings();

    for (const name of ['nope', 'x1', 'x2']) {
      const problem = expectProblem(await post({ tool_name: name }), 400, TxErrorCode.Validation);
      expect(problem).toMatchObject({ field: 'tool_name' });
      expect(problem.detail).toContain(`no tool "${name}"`);
    }
    expect(listings()).toBe(listed);

    fixture.server.registerTool('late', {}, async () => ({ content: [{ type: 'text', text: '"here"' }] }));
    expectProblem(await post({ tool_name: 'late' }), 400, TxErrorCode.Validation);
    await advanceVirtual(scheduler, 1_000);
    expect((await post({ tool_name: 'late' })).body).toMatchObject({ success: true, result: 'here' });
    expect(listings()).toBe(listed + 1);

    expect(fixture.seen.map((call) => call.tool)).toEqual(['counter']);
    expect(monitor.report().tools.map((tool) => tool.tool)).toEqual(['counter', 'late']);
  });

  it('keeps /health ok and small under a flood of made-up tool names', async () => {
    const monitor = new HealthMonitor({ minCalls: 1 });
    const { fixture } = await open({ config: { monitor } });
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, index) => post({ tool_name: `made_up_${index}` })),
    );

    expect(new Set(replies.map((reply) => reply.status))).toEqual(new Set([400]));
    const health = await request('/health');
    expect(health.body).toMatchObject({ status: 'ok', health: { healthy: true, tools: [] } });
    expect(health.text.length).toBeLessThan(1_000);
    expect(fixture.seen).toEqual([]);
  });

  it('answers 415 to a body that is not JSON (a cross-origin form or text/plain post), before anything runs', async () => {
    const { fixture } = await open();
    // Bytes, so that fetch adds no Content-Type of its own.
    const body = new TextEncoder().encode(
      JSON.stringify({ tool_name: 'counter', arguments: { key: 'csrf' } }),
    );
    const types: Array<Record<string, string>> = [
      { 'Content-Type': 'text/plain' },
      { 'Content-Type': 'application/x-www-form-urlencoded' },
      {},
    ];
    for (const headers of types) {
      const reply = await request('/execute-tool', { method: 'POST', headers, body });
      expectProblem(reply, 415, 'GATEWAY_UNSUPPORTED_MEDIA_TYPE');
      expect(reply.headers.get('accept')).toBe('application/json');
    }
    expect(fixture.seen).toEqual([]);

    for (const type of ['application/json; charset=utf-8', 'application/vnd.example+json']) {
      expect(
        (await post({ tool_name: 'counter', arguments: { key: type } }, { 'Content-Type': type })).status,
      ).toBe(200);
    }
  });

  it("answers 502 when the tool ran but its output does not match its outputSchema (the server's check)", async () => {
    let runs = 0;
    await open({
      register: (server) =>
        server.registerTool('pay', { outputSchema: { charged: z.number() } }, async () => {
          runs += 1;
          return { content: [], structuredContent: { charged: 'oops' } as never };
        }),
    });
    const problem = expectProblem(await post({ tool_name: 'pay' }), 502, TxErrorCode.ProtocolError);
    expect(problem.detail).toContain('Output validation error');
    expect(problem.metadata).toMatchObject({ attempts: 1, status: 'failed' });
    expect(runs).toBe(1);
  });

  it("answers 502 when the tool ran but its output does not match its outputSchema (the client's check)", async () => {
    await open({
      register: (server) => {
        server.registerTool('pay', { outputSchema: { charged: z.number() } }, async () => ({
          content: [],
          structuredContent: { charged: 1 },
        }));
        // A server that does not check its own output: the SDK client does, against the listed schema.
        server.server.setRequestHandler(CallToolRequestSchema, async () => ({
          content: [],
          structuredContent: { charged: 'oops' },
        }));
      },
    });
    const problem = expectProblem(await post({ tool_name: 'pay' }), 502, TxErrorCode.ProtocolError);
    expect(problem.detail).toContain("Structured content does not match the tool's output schema");
  });

  it('answers 400 to arguments the server refused (the tool did not run)', async () => {
    const { fixture } = await open();
    const problem = expectProblem(
      await post({ tool_name: 'counter', arguments: { key: 42 } }),
      400,
      TxErrorCode.ProtocolError,
    );
    expect(problem.detail).toContain('Input validation error');
    expect(fixture.seen).toEqual([]);
  });

  it('answers 429 with Retry-After when the rate limit refuses a call', async () => {
    await open({ config: { limiter: tokenBucket({ ratePerSecond: 0.01, burst: 1, maxQueue: 0 }) } });
    expect((await post({ tool_name: 'counter', arguments: { key: 'r' } })).status).toBe(200);
    const reply = await post({ tool_name: 'counter', arguments: { key: 'r' } });
    expectProblem(reply, 429, TxErrorCode.RateLimited);
    expect(reply.headers.get('retry-after')).toBe('1');
  });

  it('answers 503 with Retry-After from the breaker while the circuit is open', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 30_000 });
    const { fixture } = await open({ config: { breaker } });
    await post({ tool_name: 'boom', arguments: { message: 'pricing service broken' } });
    const reply = await post({ tool_name: 'counter', arguments: { key: 'c' } });

    expectProblem(reply, 503, TxErrorCode.CircuitOpen);
    expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(25);
    expect(Number(reply.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    expect(fixture.effects.get('c')).toBeUndefined();
  });
});

describe('auth and errors', () => {
  it('answers 401 with a challenge when the auth hook refuses, on every route', async () => {
    const { fixture } = await open({
      gateway: { auth: (c) => c.req.header('authorization') === 'Bearer s3cret' },
    });
    const call = { tool_name: 'counter', arguments: { key: 'a' } };

    const refused = await post(call, { Authorization: 'Bearer wrong' });
    expectProblem(refused, 401, 'GATEWAY_UNAUTHORIZED');
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    expectProblem(await request('/health'), 401, 'GATEWAY_UNAUTHORIZED');
    expect(fixture.seen).toEqual([]);

    expect((await post(call, { Authorization: 'Bearer s3cret' })).body).toMatchObject({ success: true });
  });

  it('answers a failing auth hook 500 without saying why', async () => {
    await open({
      gateway: {
        auth: async () => {
          throw new Error('vault token=abc123 unreachable at /home/alice/vault.js');
        },
      },
    });
    const reply = await post({ tool_name: 'counter', arguments: { key: 'a' } });
    expectProblem(reply, 500, 'GATEWAY_INTERNAL_ERROR');
    expect(reply.text).not.toContain('abc123');
    expect(reply.text).not.toContain('alice');
  });

  it('tells onError of a 500, never the client; a hook that throws changes nothing', async () => {
    const seen: Array<{ error: unknown; path: string }> = [];
    const failure = new Error('vault token=abc123 unreachable');
    await open({
      gateway: {
        auth: () => {
          throw failure;
        },
        onError: (error: unknown, c: Context) => {
          seen.push({ error, path: c.req.path });
          throw new Error('the logger is down too');
        },
      },
    });
    const reply = await post({ tool_name: 'counter', arguments: { key: 'a' } });

    expectProblem(reply, 500, 'GATEWAY_INTERNAL_ERROR');
    expect(reply.text).not.toContain('abc123');
    await until(() => seen.length === 1);
    expect(seen).toEqual([{ error: failure, path: '/execute-tool' }]);
  });

  it('answers an unknown route 404', async () => {
    await open();
    expectProblem(await request('/nowhere'), 404, 'GATEWAY_NOT_FOUND');
  });

  it('answers another method on a route 405 with Allow', async () => {
    await open();
    const cases: Array<[string, string, string]> = [
      ['GET', '/execute-tool', 'POST'],
      ['PUT', '/execute-tool', 'POST'],
      ['POST', '/health', 'GET, HEAD'],
      ['DELETE', '/health', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const reply = await request(path, { method });
      expectProblem(reply, 405, 'GATEWAY_METHOD_NOT_ALLOWED');
      expect(reply.headers.get('allow')).toBe(allow);
    }
  });

  it('validates its options, naming the field', () => {
    const tx = { call: () => undefined } as unknown as Parameters<typeof createGateway>[0];
    expect(() => createGateway(tx, { bodyLimit: 0 })).toThrow(
      'Invalid options.bodyLimit: must be greater than 0',
    );
    expect(() => createGateway(tx, { auth: 'yes' as never })).toThrow('Invalid options.auth');
    expect(() => createGateway(tx, { authChallenge: 'Bearer\r\nSet-Cookie: a=b' })).toThrow(
      'Invalid options.authChallenge: must be a header value',
    );
    expect(() => createGateway(tx, { authChallenge: 'Bearer ' })).toThrow('Invalid options.authChallenge');
    expect(() => createGateway(tx, { onError: 'log' as never })).toThrow('Invalid options.onError');
    expect(() => createGateway(tx, { relistToolsMs: -1 })).toThrow('Invalid options.relistToolsMs');
    expect(() => createGateway({} as never)).toThrow('Invalid tx');
  });

  it('maps every error code to an HTTP status', () => {
    const statuses = Object.fromEntries(
      Object.values(TxErrorCode).map((code) => [code, httpStatusOf(new TxError(code, 'x'))]),
    );
    expect(statuses).toEqual({
      MCP_TX_TIMEOUT: 504,
      MCP_TX_NETWORK_ERROR: 502,
      MCP_TX_TOOL_ERROR: 502,
      MCP_TX_PROTOCOL_ERROR: 502,
      MCP_TX_CIRCUIT_OPEN: 503,
      MCP_TX_RATE_LIMITED: 429,
      MCP_TX_IDEMPOTENCY_CONFLICT: 422,
      MCP_TX_IN_PROGRESS: 409,
      MCP_TX_VALIDATION: 400,
      MCP_TX_CANCELLED: 503,
      MCP_TX_STORE_UNAVAILABLE: 503,
    });
  });

  it("answers 400 only for the server's refusals of the call's input; output checks are 502", () => {
    const statusOf = (message: string) => httpStatusOf(new TxError(TxErrorCode.ProtocolError, message));
    expect(statusOf('MCP error -32602: Tool nope not found')).toBe(400);
    expect(statusOf('MCP error -32602: Tool pay disabled')).toBe(400);
    expect(statusOf('MCP error -32602: Input validation error: Invalid arguments for tool pay: …')).toBe(400);
    expect(statusOf('MCP error -32601: Method not found')).toBe(400);
    expect(
      statusOf('MCP error -32602: Output validation error: Invalid structured content for tool pay'),
    ).toBe(502);
    expect(statusOf("MCP error -32602: Structured content does not match the tool's output schema: …")).toBe(
      502,
    );
    expect(statusOf('MCP error -32603: Internal error')).toBe(502);
  });
});

describe('GET /health', () => {
  it("lists the server's tools (exposeTools), whether it speaks MCP-Tx, and the monitor's report", async () => {
    const monitor = new HealthMonitor();
    await open({ config: { monitor }, gateway: { exposeTools: true } });
    await post({ tool_name: 'counter', arguments: { key: 'h' } });
    const reply = await request('/health');

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      status: 'ok',
      server_supports_tx: true,
      active_requests: 0,
      health: { healthy: true, totals: { calls: 1, successRate: 1 } },
    });
    expect(reply.body.tools).toEqual(expect.arrayContaining(['counter', 'boom', 'slow']));
  });

  it('is degraded while the health monitor alerts', async () => {
    const monitor = new HealthMonitor({ minCalls: 1, alertThreshold: 0.9 });
    await open({ config: { monitor }, gateway: { healthMonitor: monitor } });
    await post({ tool_name: 'boom', arguments: { message: 'broken' } });
    expect((await request('/health')).body).toMatchObject({ status: 'degraded', health: { healthy: false } });
  });

  it('has no report without a monitor, and is unavailable (503) when the MCP server does not answer (healthToolsTtlMs 0: asked every time)', async () => {
    const { fixture } = await open({ gateway: { exposeTools: true, healthToolsTtlMs: 0 } });
    expect((await request('/health')).body).toMatchObject({ status: 'ok', health: null });
    await fixture.server.close();
    const reply = await request('/health');
    expect(reply.status).toBe(503);
    expect(reply.body).toMatchObject({ status: 'unavailable', tools: [] });
  });
});

/**
 * A `connect` factory for `createMcpTx` over InMemoryTransport: each connection gets a new McpServer
 * (one `counter` tool); `hold()` makes the next connections wait until `release()`; `drop()` closes
 * the current server's side. Counts the `tools/list` requests the servers received.
 */
function reconnectableServer() {
  const servers: McpServer[] = [];
  const state = { toolsLists: 0 };
  let gate: Promise<void> | undefined;
  let release: () => void = () => undefined;
  const connect = async () => {
    await gate;
    const server = new McpServer(
      { name: 'again', version: '1.0.0' },
      { capabilities: mcpTxServerCapabilities() },
    );
    server.registerTool('counter', { inputSchema: { key: z.string() } }, async ({ key }) => ({
      content: [{ type: 'text', text: JSON.stringify({ key }) }],
    }));
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const deliver = serverSide.onmessage;
    serverSide.onmessage = (message, extra) => {
      if ('method' in message && message.method === 'tools/list') state.toolsLists += 1;
      deliver?.(message, extra);
    };
    servers.push(server);
    return clientSide;
  };
  return {
    connect,
    state,
    hold() {
      gate = new Promise<void>((resolve) => {
        release = () => {
          gate = undefined;
          resolve();
        };
      });
    },
    release: () => release(),
    drop: () => servers.at(-1)?.close() ?? Promise.resolve(),
    close: () => Promise.all(servers.map((server) => server.close())),
  };
}

/** The state `tx.connection$` replays now. */
function connectionState(tx: McpTx): string | undefined {
  let state: string | undefined;
  tx.connection$
    .subscribe((value) => {
      state = value.state;
    })
    .unsubscribe();
  return state;
}

describe('GET /health while the McpTx reconnects', () => {
  it('answers 503 reconnecting without asking the server, then ok once connected again, and counts the reconnect', async () => {
    const upstream = reconnectableServer();
    const monitor = new HealthMonitor();
    upstream.hold();
    const tx = createMcpTx(upstream.connect, {
      monitor,
      reconnect: { baseDelayMs: 1, maxDelayMs: 5, connectTimeoutMs: 5_000 },
    });
    try {
      gateway = await serveGateway(createGateway(tx, { exposeTools: true }));
      const connecting = await request('/health');
      expect(connecting.status).toBe(503);
      expect(connecting.body).toMatchObject({
        status: 'reconnecting',
        tools: [],
        connection: { state: 'connecting', attempt: 1 },
      });

      upstream.release();
      await tx.ready;
      const up = await request('/health');
      expect(up.status).toBe(200);
      expect(up.body).toMatchObject({
        status: 'ok',
        tools: ['counter'],
        connection: { state: 'connected', attempt: 0 },
        health: { connection: { state: 'connected', reconnects: 0 } },
      });
      expect(upstream.state.toolsLists).toBe(1);

      upstream.hold();
      await upstream.drop();
      await until(() => connectionState(tx) === 'reconnecting');
      const down = await request('/health');
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({
        status: 'reconnecting',
        tools: [],
        connection: { state: 'reconnecting' },
        health: { connection: { state: 'reconnecting', reconnects: 0 } },
      });

      upstream.release();
      await until(() => connectionState(tx) === 'connected');
      expect(upstream.state.toolsLists).toBe(1); // the 503 asked nothing, now or after the reconnect
      const again = await request('/health');
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({
        status: 'ok',
        tools: ['counter'],
        health: { connection: { state: 'connected', reconnects: 1 } },
      });
      expect(upstream.state.toolsLists).toBe(2);
      expect((await post({ tool_name: 'counter', arguments: { key: 'k' } })).body).toMatchObject({
        success: true,
        result: { key: 'k' },
      });

      await tx.close({ timeoutMs: 1_000 });
      const closed = await request('/health');
      expect(closed.status).toBe(503);
      expect(closed.body).toMatchObject({
        status: 'unavailable',
        tools: [],
        connection: { state: 'closed' },
      });
      expect(upstream.state.toolsLists).toBe(2);
    } finally {
      await tx.close({ timeoutMs: 1_000 });
      await upstream.close();
    }
  });
});

/** A raw HTTP/1.1 connection to the gateway: what it wrote, and whether it closed. */
async function rawConnection(url: URL) {
  const socket: Socket = connect(Number(url.port), url.hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  const state = { received: '', closed: false };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    state.received += chunk;
  });
  socket.on('close', () => {
    state.closed = true;
  });
  return { socket, state };
}

describe('serveGateway close()', () => {
  it('answers the requests in flight with Connection: close, and resolves as soon as they are done', async () => {
    const held = heldTool();
    const { gateway: served } = await open({ register: held.register });
    await request('/health'); // a keep-alive connection, idle
    const inFlight = post({ tool_name: 'hold', arguments: { order: 'o1' } });
    await until(() => held.runs() === 1);

    const closed = served.close();
    held.release();
    const reply = await inFlight;
    const answeredAt = Date.now();
    await closed;

    expect(reply.body).toMatchObject({ success: true, result: { order: 'o1' } });
    expect(reply.headers.get('connection')).toBe('close');
    expect(Date.now() - answeredAt).toBeLessThan(1_000); // not the 5 s of an idle keep-alive
    await expect(fetch(new URL('/health', served.url))).rejects.toThrow();
  });

  it('refuses 503 a request that arrives on an open connection while closing, without running the tool', async () => {
    const { fixture, gateway: served } = await open();
    const { socket, state } = await rawConnection(served.url);
    // A first request, and the first bytes of the next one: the connection is not idle.
    socket.write('GET /nowhere HTTP/1.1\r\nHost: gateway\r\n\r\nPOST /execute');
    await until(() => /\r\n\r\n\{.*\}$/s.test(state.received));
    const closed = served.close();
    const body = JSON.stringify({ tool_name: 'counter', arguments: { key: 'late' } });
    socket.write(
      `-tool HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await until(() => state.closed);
    await closed;

    const second = state.received.slice(state.received.indexOf('HTTP/1.1', 1));
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(second).toMatch(/\r\nConnection: close\r\n/i);
    expect(second).toMatch(/\r\nRetry-After: 1\r\n/i);
    expect(second).toContain('"code":"GATEWAY_SHUTTING_DOWN"');
    expect(fixture.seen).toEqual([]);
  });

  it('closes the connections left after closeTimeoutMs; their calls still complete', async () => {
    const held = heldTool();
    const { fixture, gateway: served } = await open({
      register: held.register,
      serve: { closeTimeoutMs: 0 },
    });
    const inFlight = post({ tool_name: 'hold', arguments: { order: 'o2' } });
    await until(() => held.runs() === 1);

    await served.close();
    await expect(inFlight).rejects.toThrow();
    held.release();
    await until(() => fixture.tx.activeRequests.size === 0);
    expect(held.runs()).toBe(1);
  });

  it('can be called again (same promise), and validates its options', async () => {
    const { fixture, gateway: served } = await open();
    const first = served.close();
    expect(served.close()).toBe(first);
    await first;
    await expect(served.close()).resolves.toBeUndefined();
    await expect(serveGateway(createGateway(fixture.tx), { closeTimeoutMs: -1 })).rejects.toThrow(
      'Invalid options.closeTimeoutMs: must be at least 0',
    );
  });
});

describe('security: bearerAuth, the bind check, /health and the tools allow list', () => {
  const token = 'gw-token-0123456789abcdef';
  const rotated = 'gw-token-fedcba9876543210';
  const call = { tool_name: 'counter', arguments: { key: 'auth' } };

  it('refuses `Bearer undefined` and every other wrong or missing token (401, no call); lets each configured token in', async () => {
    const { fixture } = await open({ gateway: { auth: bearerAuth({ tokens: [token, rotated] }) } });
    const wrong = [
      undefined,
      'Bearer undefined',
      'Bearer ',
      'Bearer',
      `Basic ${Buffer.from(`user:${token}`).toString('base64')}`,
      `Bearer ${token.slice(0, -1)}`,
      `Bearer ${token}x`,
      `Bearer ${token} ${rotated}`,
      token,
    ];
    for (const authorization of wrong) {
      const reply = await post(call, authorization === undefined ? {} : { Authorization: authorization });
      expectProblem(reply, 401, 'GATEWAY_UNAUTHORIZED');
      expect(reply.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(fixture.seen).toEqual([]);

    expect((await post(call, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await post(call, { Authorization: `bearer ${rotated}` })).status).toBe(200);
    expect(fixture.seen).toHaveLength(2);
  });

  it('bearerAuth refuses no token, an unset, empty or short one at construction, naming tokens', () => {
    const unset = process.env.MCP_TX_TEST_SURELY_UNSET_TOKEN;
    expect(() => bearerAuth({ tokens: [unset as string] })).toThrow(
      'Invalid options.tokens.0: must be strings (is a token variable unset?)',
    );
    expect(() => bearerAuth({ tokens: [`${unset}`] })).toThrow(
      'Invalid options.tokens.0: must be at least 16 characters',
    );
    expect(() => bearerAuth({ tokens: [''] })).toThrow('Invalid options.tokens.0');
    expect(() => bearerAuth({ tokens: [token, 'short'] })).toThrow('Invalid options.tokens.1');
    expect(() => bearerAuth({ tokens: ['a token with spaces in it'] })).toThrow(
      'Invalid options.tokens.0: must be bearer tokens',
    );
    expect(() => bearerAuth({ tokens: [] })).toThrow('Invalid options.tokens: must hold at least one token');
    expect(() => bearerAuth({} as never)).toThrow('Invalid options.tokens');
    expect(() => bearerAuth({ tokens: [token], extra: 1 } as never)).toThrow(
      'Invalid options.extra: is not a known option',
    );
  });

  it('refuses to listen on 0.0.0.0 without auth (MCP_TX_VALIDATION naming hostname); starts with auth, with allowUnauthenticated, or on loopback', async () => {
    fixture = await connectFixture();
    const open = createGateway(fixture.tx);
    const refusal = await serveGateway(open, { hostname: '0.0.0.0' }).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(TxError);
    expect(refusal).toMatchObject({ code: TxErrorCode.Validation, field: 'options.hostname' });
    expect((refusal as TxError).message).toContain('an auth hook, e.g. bearerAuth({ tokens: [...] })');
    expect((refusal as TxError).message).toContain('allowUnauthenticated: true');
    await expect(serveGateway(open, { hostname: '192.168.1.10' })).rejects.toThrow(
      'Invalid options.hostname',
    );

    const guarded = await serveGateway(createGateway(fixture.tx, { auth: bearerAuth({ tokens: [token] }) }), {
      hostname: '0.0.0.0',
    });
    await guarded.close();
    const allowed = await serveGateway(open, { hostname: '0.0.0.0', allowUnauthenticated: true });
    await allowed.close();
    const local = await serveGateway(open, { hostname: 'localhost' });
    await local.close();
    await expect(serveGateway(open, { allowUnauthenticated: 'yes' as never })).rejects.toThrow(
      'Invalid options.allowUnauthenticated',
    );
  });

  it('takes 127.0.0.0/8, ::1 and localhost as loopback, and nothing else', () => {
    const loopback = ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1'];
    const reachable = [
      '0.0.0.0',
      '::',
      '192.168.1.10',
      '10.0.0.1',
      '128.0.0.1',
      'example.com',
      '::2',
      '1::1',
    ];
    expect(loopback.filter((host) => !isLoopback(host))).toEqual([]);
    expect(['::ffff:127.0.0.1'].every(isLoopback)).toBe(true);
    expect(reachable.filter(isLoopback)).toEqual([]);
    expect(isLoopback('::ffff:10.0.0.1')).toBe(false);
  });

  it('asks the server tools/list once per healthToolsTtlMs however many /health checks come', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { fixture } = await open({ config: { scheduler }, gateway: { healthToolsTtlMs: 5_000 } });
    const listings = () =>
      fixture.received.filter((message) => 'method' in message && message.method === 'tools/list').length;
    const before = listings();

    const checks = await Promise.all(Array.from({ length: 20 }, () => request('/health')));
    for (let n = 0; n < 20; n++) expect((await request('/health')).status).toBe(200);
    expect(new Set(checks.map((reply) => reply.status))).toEqual(new Set([200]));
    expect(listings()).toBe(before + 1);

    await advanceVirtual(scheduler, 4_999);
    await request('/health');
    expect(listings()).toBe(before + 1);
    await advanceVirtual(scheduler, 1);
    await request('/health');
    expect(listings()).toBe(before + 2);
  });

  it('shows the tool names only to callers who passed auth, or to anyone with exposeTools', async () => {
    await open();
    const anonymous = await request('/health');
    expect(anonymous.body).toMatchObject({ status: 'ok' });
    expect(anonymous.body).not.toHaveProperty('tools');
    await gateway?.close();

    gateway = await serveGateway(
      createGateway(fixture?.tx as McpTx, { auth: bearerAuth({ tokens: [token] }) }),
    );
    expectProblem(await request('/health'), 401, 'GATEWAY_UNAUTHORIZED');
    const authorized = await request('/health', { headers: { Authorization: `Bearer ${token}` } });
    expect(authorized.body.tools).toEqual(expect.arrayContaining(['counter', 'echo']));
    await gateway.close();

    gateway = await serveGateway(createGateway(fixture?.tx as McpTx, { exposeTools: true }));
    expect((await request('/health')).body.tools).toEqual(expect.arrayContaining(['counter', 'echo']));
  });

  it('refuses a tool off the allow list like a tool the server does not list, without a call; /health shows only the allowed', async () => {
    const { fixture } = await open({ gateway: { tools: ['counter', 'echo'], exposeTools: true } });
    expect((await post(call)).status).toBe(200);
    const listings = () =>
      fixture.received.filter((message) => 'method' in message && message.method === 'tools/list').length;
    const listed = listings();

    const offList = expectProblem(
      await post({ tool_name: 'greet', arguments: { name: 'x' } }),
      400,
      'MCP_TX_VALIDATION',
    );
    const unknown = expectProblem(await post({ tool_name: 'nope', arguments: {} }), 400, 'MCP_TX_VALIDATION');
    expect(offList).toEqual({ ...unknown, detail: String(unknown.detail).replace('nope', 'greet') });
    expect(listings()).toBe(listed);
    expect(fixture.seen.map((seen) => seen.tool)).toEqual(['counter']);
    expect([...((await request('/health')).body.tools as string[])].sort()).toEqual(['counter', 'echo']);
  });

  it('validates the new options, naming the field', () => {
    const tx = { call: () => undefined } as unknown as McpTx;
    expect(() => createGateway(tx, { tools: [] })).toThrow(
      'Invalid options.tools: must name at least one tool',
    );
    expect(() => createGateway(tx, { tools: ['get stock'] })).toThrow('Invalid options.tools.0');
    expect(() => createGateway(tx, { tools: 'counter' as never })).toThrow('Invalid options.tools');
    expect(() => createGateway(tx, { healthToolsTtlMs: -1 })).toThrow('Invalid options.healthToolsTtlMs');
    expect(() => createGateway(tx, { exposeTools: 'yes' as never })).toThrow('Invalid options.exposeTools');
  });
});
