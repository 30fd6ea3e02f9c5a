import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  createMcpTx,
  type McpTx,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  type TxConfig,
  TxError,
} from '../../src/index.js';

/** What the server saw of one call. */
export interface SeenCall {
  readonly tool: string;
  readonly args: Record<string, unknown>;
  readonly meta: Record<string, unknown> | undefined;
}

/** A real McpServer with a few test tools, and what it saw. */
export interface Fixture {
  readonly server: McpServer;
  readonly client: Client;
  readonly tx: McpTx;
  /** Every handler invocation, in order. */
  readonly seen: SeenCall[];
  /** Handlers whose `extra.signal` aborted. */
  readonly aborted: string[];
  /** Every JSON-RPC message the server received. */
  readonly received: JSONRPCMessage[];
  /** Side effects per key: how many times `counter`, `flaky` and the `slow_*` tools ran for it. */
  readonly effects: Map<string, number>;
  close(): Promise<void>;
}

const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

function registerTools(
  server: McpServer,
  seen: SeenCall[],
  aborted: string[],
  effects: Map<string, number>,
): void {
  const record = (tool: string, args: Record<string, unknown>, meta: Record<string, unknown> | undefined) =>
    seen.push({ tool, args, meta });
  const effect = (key: string) => {
    const count = (effects.get(key) ?? 0) + 1;
    effects.set(key, count);
    return count;
  };

  server.registerTool('counter', { inputSchema: { key: z.string() } }, async (args, extra) => {
    record('counter', args, extra._meta);
    return { content: [{ type: 'text', text: JSON.stringify({ count: effect(args.key) }) }] };
  });
  server.registerTool(
    'flaky',
    {
      description:
        'Fails its first `failTimes` calls per key with `message` (default TEMPORARY_FAILURE), then succeeds',
      inputSchema: { key: z.string(), failTimes: z.number(), message: z.string().optional() },
    },
    async (args, extra) => {
      record('flaky', args, extra._meta);
      const count = effect(args.key);
      if (count <= args.failTimes) throw new Error(args.message ?? 'TEMPORARY_FAILURE: try again');
      return { content: [{ type: 'text', text: JSON.stringify({ count }) }] };
    },
  );
  // The effect happens at once; the answer comes after `ms` (a client timeout then loses the response).
  const slowEffect = async (
    tool: string,
    args: { key: string; ms: number },
    extra: { _meta?: Record<string, unknown>; signal: AbortSignal },
  ) => {
    record(tool, args, extra._meta);
    const count = effect(args.key);
    await wait(args.ms, extra.signal);
    return { content: [{ type: 'text' as const, text: JSON.stringify({ count }) }] };
  };
  const slowShape = { key: z.string(), ms: z.number() };
  server.registerTool('slow_effect', { inputSchema: slowShape }, (args, extra) =>
    slowEffect('slow_effect', args, extra),
  );
  server.registerTool(
    'slow_idempotent',
    { inputSchema: slowShape, annotations: { idempotentHint: true } },
    (args, extra) => slowEffect('slow_idempotent', args, extra),
  );
  server.registerTool(
    'slow_read',
    { inputSchema: slowShape, annotations: { readOnlyHint: true } },
    (args, extra) => slowEffect('slow_read', args, extra),
  );

  server.registerTool('echo', { inputSchema: { value: z.unknown().optional() } }, async (args, extra) => {
    record('echo', args, extra._meta);
    return { content: [{ type: 'text', text: JSON.stringify(args) }] };
  });
  server.registerTool('greet', { inputSchema: { name: z.string() } }, async (args, extra) => {
    record('greet', args, extra._meta);
    return { content: [{ type: 'text', text: `Hello, ${args.name}!` }] };
  });
  server.registerTool(
    'structured',
    { inputSchema: { n: z.number() }, outputSchema: { doubled: z.number() } },
    async (args, extra) => {
      record('structured', args, extra._meta);
      return {
        content: [{ type: 'text', text: String(args.n * 2) }],
        structuredContent: { doubled: args.n * 2 },
      };
    },
  );
  server.registerTool('boom', { inputSchema: { message: z.string() } }, async (args, extra) => {
    record('boom', args, extra._meta);
    throw new Error(args.message);
  });
  server.registerTool('progress', { inputSchema: { steps: z.number() } }, async (args, extra) => {
    record('progress', args, extra._meta);
    const progressToken = extra._meta?.progressToken;
    for (let step = 1; step <= args.steps && progressToken !== undefined; step++) {
      await extra.sendNotification({
        method: 'notifications/progress',
        params: { progressToken, progress: step, total: args.steps },
      });
    }
    return { content: [{ type: 'text', text: 'done' }] };
  });
  server.registerTool('slow', { inputSchema: { ms: z.number() } }, async (args, extra) => {
    record('slow', args, extra._meta);
    await wait(args.ms, extra.signal);
    if (extra.signal.aborted) aborted.push('slow');
    return { content: [{ type: 'text', text: 'done' }] };
  });
}

/**
 * Connects a real SDK Client and McpServer over InMemoryTransport.
 * `serverTx` says whether the server advertises MCP-Tx: without the `dedupe` feature, as its tools
 * are not wrapped in `txTool` (a repeated request runs them again); `serverDedupes` advertises it
 * all the same, for tests of what the client does with a server that says it dedupes.
 */
export async function connectFixture(
  options: {
    serverTx?: boolean;
    serverDedupes?: boolean;
    config?: TxConfig;
    register?: (server: McpServer) => void;
  } = {},
): Promise<Fixture> {
  const serverTx = options.serverTx ?? true;
  const dedupe = options.serverDedupes ?? false;
  const server = new McpServer(
    { name: 'fixture', version: '1.0.0' },
    serverTx ? { capabilities: mcpTxServerCapabilities({}, { dedupe }) } : {},
  );
  const seen: SeenCall[] = [];
  const aborted: string[] = [];
  const effects = new Map<string, number>();
  registerTools(server, seen, aborted, effects);
  options.register?.(server);
  const client = new Client(
    { name: 'fixture-client', version: '1.0.0' },
    { capabilities: mcpTxClientCapabilities() },
  );
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const received: JSONRPCMessage[] = [];
  const deliver = serverTransport.onmessage;
  serverTransport.onmessage = (message, extra) => {
    received.push(message);
    deliver?.(message, extra);
  };
  await client.connect(clientTransport);
  const tx = createMcpTx(client, options.config);
  return {
    server,
    client,
    tx,
    seen,
    aborted,
    received,
    effects,
    async close() {
      await tx.close({ timeoutMs: 1_000 });
      await server.close();
    },
  };
}

/** The TxError a call failed with; fails the test if it succeeded or failed with something else. */
export async function expectFailure(call: Promise<unknown>): Promise<TxError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof TxError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

/** The `notifications/cancelled` messages among `messages`. */
export function cancellations(messages: readonly JSONRPCMessage[]): JSONRPCMessage[] {
  return messages.filter((message) => 'method' in message && message.method === 'notifications/cancelled');
}

/** Resolves once `predicate` holds, polling the event loop (no fixed sleeps). */
export async function until(predicate: () => boolean, timeoutMs = 2_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Resolves once the async `check` holds, asking again every 20 ms (for state across a process boundary). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The `_meta.mcp_tx` a handler saw, if any. */
export function wireOf(seen: SeenCall | undefined): Record<string, unknown> | undefined {
  return seen?.meta?.mcp_tx as Record<string, unknown> | undefined;
}
