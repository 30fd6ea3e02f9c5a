import type {
  CallToolResult,
  ClientCapabilities,
  ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import type { TxRequest, TxStatus } from './types.js';

/**
 * The MCP-Tx protocol version spoken on the wire.
 *
 * @example
 * console.log(MCP_TX_VERSION); // '0.1.0'
 */
export const MCP_TX_VERSION = '0.1.0';
/** The key under `capabilities.experimental` and under `_meta`. */
export const MCP_TX_KEY = 'mcp_tx';

/**
 * The capability block both sides put in `capabilities.experimental.mcp_tx`.
 *
 * @example
 * const block = client.getServerCapabilities()?.experimental?.mcp_tx as McpTxCapability | undefined;
 * console.log(block?.version, block?.features); // '0.1.0' [ 'ack', 'retry', 'idempotency', 'transactions', 'dedupe' ]
 */
export interface McpTxCapability {
  readonly version: string;
  readonly features: readonly string[];
}

/**
 * The feature a server names in `capabilities.experimental.mcp_tx.features` when it dedupes its
 * tools' requests (each tool of it wrapped in `txTool`, or an equivalent): it runs each
 * `(tool, idempotency_key)` — and, for a request without a key, each `(tool, request_id)` — at most
 * once within its window, joining a repeat while the first runs and answering it from its store
 * after. That, and not MCP-Tx alone, is what makes an ambiguous retry (a timeout, a lost connection)
 * of a keyed call safe: the Python MCP-Tx 0.1.0 server advertises MCP-Tx without it and runs such a
 * retry again. Clients that do not know the name ignore it (the Python client does).
 *
 * @example
 * const dedupes = (block?.features ?? []).includes(MCP_TX_DEDUPE_FEATURE);
 */
export const MCP_TX_DEDUPE_FEATURE = 'dedupe';

/** The features of MCP-Tx 0.1.0, as both the Python client and server advertise them. */
const BASE_FEATURES = Object.freeze(['ack', 'retry', 'idempotency', 'transactions']);

const CLIENT_CAPABILITY: McpTxCapability = Object.freeze({
  version: MCP_TX_VERSION,
  features: BASE_FEATURES,
});

const DEDUPING_SERVER_CAPABILITY: McpTxCapability = Object.freeze({
  version: MCP_TX_VERSION,
  features: Object.freeze([...BASE_FEATURES, MCP_TX_DEDUPE_FEATURE]),
});

/**
 * `_meta.mcp_tx` of a `tools/call` request (snake_case, as the Python MCP-Tx sends it). A server
 * tool callback finds it in `extra._meta.mcp_tx`.
 *
 * @example
 * server.registerTool('echo', { inputSchema: {} }, async (_args, extra) => {
 *   const wire = extra._meta?.mcp_tx as WireRequestMeta | undefined;
 *   return { content: [{ type: 'text', text: `attempt ${(wire?.retry_count ?? 0) + 1}` }] };
 * });
 */
export interface WireRequestMeta {
  version: string;
  request_id: string;
  transaction_id?: string;
  idempotency_key?: string;
  expect_ack: true;
  retry_count: number;
  timeout_ms: number;
  /**
   * ISO 8601, when the client sent the call. mcp-tx writes UTC with `Z` and milliseconds, stamped
   * anew on each attempt; the Python MCP-Tx 0.1.0 writes naive UTC (no `Z`) with microseconds, the
   * first attempt's on every retry. Read it with `parseWireTimestamp`, which takes both.
   */
  timestamp: string;
  correlation_id?: string;
}

/**
 * `_meta.mcp_tx` of a `CallToolResult`: what the server says it did with the request.
 *
 * @example
 * const wire: WireResponseMeta = { ack: true, processed: true, duplicate: false, final_status: 'completed' };
 * return { content: [{ type: 'text', text: 'done' }], _meta: { mcp_tx: wire } };
 */
export interface WireResponseMeta {
  ack?: boolean;
  processed?: boolean;
  duplicate?: boolean;
  attempts?: number;
  final_status?: TxStatus;
  error_code?: string;
  error_message?: string;
  /** Optional server hint: wait this long before retrying. */
  retry_after_ms?: number;
}

function withExperimental<C extends { experimental?: Record<string, object> }>(
  base: C,
  capability: McpTxCapability,
): C {
  return { ...base, experimental: { ...base.experimental, [MCP_TX_KEY]: capability } };
}

/**
 * Client capabilities that advertise MCP-Tx, merged into `base`.
 *
 * @example
 * const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
 */
export function mcpTxClientCapabilities(base: ClientCapabilities = {}): ClientCapabilities {
  return withExperimental(base, CLIENT_CAPABILITY);
}

/**
 * Server capabilities that advertise MCP-Tx, merged into `base`: version 0.1.0 and the features
 * `ack`, `retry`, `idempotency`, `transactions` and — unless `options.dedupe` is `false` —
 * `dedupe` ({@link MCP_TX_DEDUPE_FEATURE}). Advertise `dedupe` only when every tool of the server
 * that has a side effect is wrapped in `txTool`: it tells clients that a repeated request (same
 * idempotency key, or same request id) is not run twice. A server that answers with MCP-Tx metadata
 * but whose tools may run a repeated request again says `{ dedupe: false }`: clients then do not
 * retry its keyed calls after an ambiguous failure (a timeout, a lost connection).
 *
 * @example
 * const server = new McpServer({ name: 'shop', version: '1.0.0' }, { capabilities: mcpTxServerCapabilities() });
 * const plain = new McpServer({ name: 'notes', version: '1.0.0' }, { capabilities: mcpTxServerCapabilities({}, { dedupe: false }) });
 */
export function mcpTxServerCapabilities(
  base: ServerCapabilities = {},
  options: { readonly dedupe?: boolean } = {},
): ServerCapabilities {
  return withExperimental(base, options.dedupe === false ? CLIENT_CAPABILITY : DEDUPING_SERVER_CAPABILITY);
}

/** The peer's `experimental.mcp_tx` block, when it is an object (of any content). */
function mcpTxBlock(
  capabilities: { experimental?: Record<string, unknown> } | undefined,
): { features?: unknown } | undefined {
  const block = capabilities?.experimental?.[MCP_TX_KEY];
  return typeof block === 'object' && block !== null && !Array.isArray(block) ? block : undefined;
}

/**
 * Does a peer's capability block advertise MCP-Tx? Yes when `experimental.mcp_tx` is an object,
 * whatever it holds: a block without a `version` (even `{}`) is read as MCP-Tx 0.1.0, as the Python
 * MCP-Tx client reads it. Speaking MCP-Tx only means the request `_meta.mcp_tx` is sent and the
 * response's is read; it promises no server-side dedupe — that is the `dedupe` feature
 * ({@link serverDedupes}), which alone makes an ambiguous retry of a keyed call safe.
 *
 * @example
 * advertisesMcpTx(client.getServerCapabilities()); // true when the server speaks MCP-Tx
 * advertisesMcpTx({ experimental: { mcp_tx: {} } }); // true: read as 0.1.0
 */
export function advertisesMcpTx(
  capabilities: { experimental?: Record<string, unknown> } | undefined,
): boolean {
  return mcpTxBlock(capabilities) !== undefined;
}

/**
 * Does a peer advertise MCP-Tx with `feature` among its `features`? (A block without `features`,
 * or whose `features` is not an array, names none.)
 *
 * @example
 * advertisesMcpTxFeature(server.server.getClientCapabilities(), 'transactions'); // true for an MCP-Tx client
 */
export function advertisesMcpTxFeature(
  capabilities: { experimental?: Record<string, unknown> } | undefined,
  feature: string,
): boolean {
  const features = mcpTxBlock(capabilities)?.features;
  return Array.isArray(features) && features.includes(feature);
}

/**
 * Does the server dedupe repeated requests — does it advertise MCP-Tx with the
 * {@link MCP_TX_DEDUPE_FEATURE} feature? Only then is an ambiguous retry of a keyed call (after a
 * timeout, a lost connection) safe: the server answers it from its store, or joins the first
 * request still running, instead of running the tool again. A server advertising MCP-Tx without it
 * (the Python MCP-Tx 0.1.0 server, a server whose tools are not wrapped in `txTool`) may run it twice.
 *
 * @example
 * const safe = serverDedupes(client.getServerCapabilities()); // true for a txTool server
 */
export function serverDedupes(capabilities: { experimental?: Record<string, unknown> } | undefined): boolean {
  return advertisesMcpTxFeature(capabilities, MCP_TX_DEDUPE_FEATURE);
}

/** The request `_meta.mcp_tx` of attempt number `retryCount` (0 for the first), sent at `timestamp` (ISO 8601). */
export function wireRequestMeta(request: TxRequest, retryCount: number, timestamp: string): WireRequestMeta {
  const meta: WireRequestMeta = {
    version: MCP_TX_VERSION,
    request_id: request.requestId,
    expect_ack: true,
    retry_count: retryCount,
    timeout_ms: request.options.timeoutMs,
    timestamp,
  };
  if (request.transactionId !== undefined) meta.transaction_id = request.transactionId;
  if (request.idempotencyKey !== undefined) meta.idempotency_key = request.idempotencyKey;
  if (request.correlationId !== undefined) meta.correlation_id = request.correlationId;
  return meta;
}

/** The response `_meta.mcp_tx`, if the server sent one. */
export function readWireResponseMeta(result: CallToolResult): WireResponseMeta | undefined {
  const block = result._meta?.[MCP_TX_KEY];
  return typeof block === 'object' && block !== null ? (block as WireResponseMeta) : undefined;
}
