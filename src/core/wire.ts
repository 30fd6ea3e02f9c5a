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
 * console.log(block?.version, block?.features); // '0.1.0' [ 'ack', 'retry', 'idempotency', 'transactions' ]
 */
export interface McpTxCapability {
  readonly version: string;
  readonly features: readonly string[];
}

const CAPABILITY: McpTxCapability = Object.freeze({
  version: MCP_TX_VERSION,
  features: Object.freeze(['ack', 'retry', 'idempotency', 'transactions']),
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

function withExperimental<C extends { experimental?: Record<string, object> }>(base: C): C {
  return { ...base, experimental: { ...base.experimental, [MCP_TX_KEY]: CAPABILITY } };
}

/**
 * Client capabilities that advertise MCP-Tx, merged into `base`.
 *
 * @example
 * const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
 */
export function mcpTxClientCapabilities(base: ClientCapabilities = {}): ClientCapabilities {
  return withExperimental(base);
}

/**
 * Server capabilities that advertise MCP-Tx, merged into `base`.
 *
 * @example
 * const server = new McpServer({ name: 'shop', version: '1.0.0' }, { capabilities: mcpTxServerCapabilities() });
 */
export function mcpTxServerCapabilities(base: ServerCapabilities = {}): ServerCapabilities {
  return withExperimental(base);
}

/**
 * Does a peer's capability block advertise MCP-Tx?
 *
 * @example
 * advertisesMcpTx(client.getServerCapabilities()); // true when the server speaks MCP-Tx
 */
export function advertisesMcpTx(
  capabilities: { experimental?: Record<string, unknown> } | undefined,
): boolean {
  const block = capabilities?.experimental?.[MCP_TX_KEY] as Partial<McpTxCapability> | undefined;
  return typeof block?.version === 'string';
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
