import { parseWireTimestamp } from '../core/time.js';
import { MCP_TX_KEY } from '../core/wire.js';

/**
 * What a tool callback learns of an MCP-Tx request from its `_meta.mcp_tx`, read leniently (a field
 * of the wrong type is left out): made by {@link txRequestOf}.
 *
 * @example
 * const request: TxToolRequest = { requestId: '2adbedce-…', retryCount: 1, timestamp: '2026-12-06T04:48:08.839832', sentAtMs: 1796532488839 };
 */
export interface TxToolRequest {
  /** `request_id`: one per logical call, the same on each of its retries. */
  readonly requestId?: string;
  /** `idempotency_key`, when the client gave one. */
  readonly idempotencyKey?: string;
  /** `transaction_id`: the workflow or saga the call belongs to. */
  readonly transactionId?: string;
  /** `correlation_id`. */
  readonly correlationId?: string;
  /** `retry_count`: 0 on the first attempt (also when absent), 1 on the second… */
  readonly retryCount: number;
  /** `timeout_ms`: how long the client waits for this attempt. */
  readonly timeoutMs?: number;
  /** `timestamp` as the client wrote it. */
  readonly timestamp?: string;
  /**
   * `timestamp` read as ms since the epoch (a time without `Z` or offset is UTC), absent when it is
   * missing or not an ISO 8601 date and time. mcp-tx stamps each attempt; the Python MCP-Tx 0.1.0
   * sends its first attempt's time on every retry.
   */
  readonly sentAtMs?: number;
}

/**
 * The MCP-Tx request a tool callback is answering: its `extra._meta.mcp_tx`, read into a
 * {@link TxToolRequest}; `undefined` when the request has none (a plain MCP client).
 *
 * @example
 * server.registerTool('charge', { inputSchema: { order: z.string() } }, txTool(async ({ order }, extra) => {
 *   const request = txRequestOf(extra);
 *   log(`charging ${order}, attempt ${(request?.retryCount ?? 0) + 1}, sent at ${request?.sentAtMs}`);
 *   return chargeOrder(order);
 * }, { tool: 'charge', store }));
 */
export function txRequestOf(extra: { readonly _meta?: Record<string, unknown> }): TxToolRequest | undefined {
  const block = extra._meta?.[MCP_TX_KEY];
  if (typeof block !== 'object' || block === null || Array.isArray(block)) return undefined;
  const wire = block as Record<string, unknown>;
  const text = (name: string) => (typeof wire[name] === 'string' ? (wire[name] as string) : undefined);
  const count = (name: string) => {
    const value = wire[name];
    return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  };
  const request: { -readonly [K in keyof TxToolRequest]: TxToolRequest[K] } = {
    retryCount: count('retry_count') ?? 0,
  };
  const fields = {
    requestId: text('request_id'),
    idempotencyKey: text('idempotency_key'),
    transactionId: text('transaction_id'),
    correlationId: text('correlation_id'),
    timeoutMs: count('timeout_ms'),
    timestamp: text('timestamp'),
    sentAtMs: parseWireTimestamp(wire.timestamp),
  };
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) (request as Record<string, unknown>)[name] = value;
  }
  return request;
}
