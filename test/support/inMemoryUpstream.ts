import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { mcpTxServerCapabilities, memoryIdempotencyStore, txTool } from '../../src/index.js';

/** How the next connections are answered. */
export type UpstreamMode =
  /** A fresh server answers. */
  | 'up'
  /** Nothing is there: the connection is gone before `initialize` (the SDK rejects with "Not connected"). */
  | 'down'
  /** A server that answers `initialize` with an error. */
  | 'refusing'
  /** Something that takes every message and answers none. */
  | 'silent';

/** What a server saw of one `tools/call`. */
export interface UpstreamCall {
  readonly server: number;
  readonly tool: string;
  readonly jsonRpcId: string | number;
  readonly wire: Record<string, unknown> | undefined;
}

/**
 * A `connect` factory over InMemoryTransport, for `createMcpTx(connect)`: each connection made in
 * mode `up` gets a new real McpServer (server number 1, 2…), as a restarted server process would;
 * their effects and idempotency store outlive them. `drop()` ends the current connection from the
 * server's side, `mute()` makes the current server stop answering. Tools:
 *
 * - `echo` (no annotations), `read` (`readOnlyHint`), `write` (`destructiveHint`, counts effects
 *   per `key`; a txTool: once per request id): each waits until `release()` when called with
 *   `hold: true`;
 * - `charge` (txTool on a shared store: once per idempotency key).
 *
 * `serverTx(n)` says whether server n advertises MCP-Tx (default: all do); `echoReadOnlyFrom` makes
 * `echo` read-only from that server on.
 */
export function inMemoryUpstream(
  options: { serverTx?: (server: number) => boolean; echoReadOnlyFrom?: number } = {},
) {
  let mode: UpstreamMode = 'up';
  let servers = 0;
  const transports: InMemoryTransport[] = [];
  const calls: UpstreamCall[] = [];
  const effects = new Map<string, number>();
  const store = memoryIdempotencyStore();
  let held: Array<() => void> = [];
  let muted: InMemoryTransport | undefined;
  let pings = 0;
  const heldKeys = new Set<string>();
  /** Holds the first call for `key` that asks to be held (a retry after a reconnect is not). */
  const hold = (key: string, wait: boolean | undefined, signal: AbortSignal) =>
    wait && !heldKeys.has(key) && heldKeys.add(key)
      ? new Promise<void>((resolve) => {
          held.push(resolve);
          signal.addEventListener('abort', () => {
            held = held.filter((waiting) => waiting !== resolve);
            resolve();
          });
        })
      : Promise.resolve();
  const effect = (key: string) => effects.set(key, (effects.get(key) ?? 0) + 1).get(key) as number;
  const text = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value) }] });

  const newServer = (number: number) => {
    const server = new McpServer(
      { name: `upstream-${number}`, version: '1.0.0' },
      (options.serverTx?.(number) ?? true) ? { capabilities: mcpTxServerCapabilities() } : {},
    );
    const shape = { key: z.string(), hold: z.boolean().optional() };
    const readOnly = options.echoReadOnlyFrom !== undefined && number >= options.echoReadOnlyFrom;
    server.registerTool(
      'echo',
      { inputSchema: shape, ...(readOnly ? { annotations: { readOnlyHint: true } } : {}) },
      async (args, extra) => {
        await hold(`echo:${args.key}`, args.hold, extra.signal);
        return text({ key: args.key, server: number });
      },
    );
    server.registerTool(
      'read',
      { inputSchema: shape, annotations: { readOnlyHint: true } },
      async (args, extra) => {
        await hold(`read:${args.key}`, args.hold, extra.signal);
        return text({ key: args.key, server: number });
      },
    );
    // Every tool with a side effect is a txTool: the server advertises the dedupe feature honestly.
    server.registerTool(
      'write',
      { inputSchema: shape, annotations: { destructiveHint: true } },
      txTool(
        async (args: { key: string; hold?: boolean }, extra: { signal: AbortSignal }) => {
          const count = effect(`write:${args.key}`);
          await hold(`write:${args.key}`, args.hold, extra.signal);
          return text({ key: args.key, count, server: number });
        },
        { tool: 'write', store, inProgress: { waitMs: 5_000, pollMs: 1 } },
      ),
    );
    server.registerTool(
      'charge',
      { inputSchema: shape },
      txTool(
        async (args: { key: string; hold?: boolean }, extra: { signal: AbortSignal }) => {
          const count = effect(`charge:${args.key}`);
          await hold(`charge:${args.key}`, args.hold, extra.signal);
          return text({ key: args.key, count, server: number });
        },
        { tool: 'charge', store, inProgress: { waitMs: 5_000, pollMs: 1 } },
      ),
    );
    return server;
  };

  /** Records each `tools/call` the server side receives, then delivers it (unless muted). */
  const watch = (serverSide: InMemoryTransport, number: number) => {
    const deliver = serverSide.onmessage;
    serverSide.onmessage = (message: JSONRPCMessage, extra) => {
      if ('method' in message && message.method === 'ping') pings += 1;
      if (muted === serverSide) return;
      if ('method' in message && message.method === 'tools/call' && 'id' in message) {
        const params = message.params as { name: string; _meta?: Record<string, unknown> };
        calls.push({
          server: number,
          tool: params.name,
          jsonRpcId: message.id,
          wire: params._meta?.mcp_tx as Record<string, unknown> | undefined,
        });
      }
      deliver?.(message, extra);
    };
  };

  const connect = async (): Promise<Transport> => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    transports.push(serverSide);
    if (mode === 'down') {
      await serverSide.close();
    } else if (mode === 'silent') {
      serverSide.onmessage = () => undefined;
    } else if (mode === 'refusing') {
      serverSide.onmessage = (message) => {
        if ('method' in message && 'id' in message) {
          void serverSide.send({
            jsonrpc: '2.0',
            id: message.id,
            error: { code: -32603, message: 'initialize refused: the server is starting' },
          });
        }
      };
    } else {
      servers += 1;
      const number = servers;
      await newServer(number).connect(serverSide);
      watch(serverSide, number);
    }
    return clientSide;
  };

  return {
    connect,
    calls,
    effects,
    /** Transports made so far (one per connection attempt that reached the factory). */
    get connects() {
      return transports.length;
    },
    /** Pings the servers received. */
    get pings() {
      return pings;
    },
    /** Servers started so far. */
    get servers() {
      return servers;
    },
    setMode(next: UpstreamMode) {
      mode = next;
    },
    /** Ends the current connection from the server's side (the server exits). */
    drop: () => transports.at(-1)?.close() ?? Promise.resolve(),
    /** The current server takes messages and answers none (a hung server, a half-open connection). */
    mute() {
      muted = transports.at(-1);
    },
    /** Lets the held calls answer. */
    release() {
      const waiting = held;
      held = [];
      for (const resolve of waiting) resolve();
    },
    get heldCalls() {
      return held.length;
    },
  };
}

/** An {@link inMemoryUpstream}. */
export type InMemoryUpstream = ReturnType<typeof inMemoryUpstream>;
