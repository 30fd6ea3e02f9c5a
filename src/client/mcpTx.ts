import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { TxCall } from '../call/call.js';
import type { JsonObject, TxRequest, TxResult } from '../core/types.js';
import type { ResolvedTxConfig, ToolPolicy, TxCallOptions } from './options.js';

/**
 * Reliable MCP tool calls on one connected SDK `Client`. Made by {@link createMcpTx}.
 *
 * @example
 * const tx = createMcpTx(client, { retry: { maxAttempts: 5 } });
 * tx.tool('charge', { idempotencyKey: (args) => `charge-${String(args.orderId)}` });
 * const { data, meta } = await tx.call('charge', { orderId: 42, cents: 500 });
 * console.log(data, meta.attempts, tx.activeRequests.size);
 * await tx.close();
 */
export interface McpTx {
  /** The SDK client calls go through. */
  readonly client: Client;
  /** The validated configuration, defaults filled in. */
  readonly config: ResolvedTxConfig;
  /** Whether the connected server advertised `experimental.mcp_tx`. */
  readonly serverSupportsTx: boolean;
  /** Logical calls in flight, by request id. */
  readonly activeRequests: ReadonlyMap<string, TxRequest>;
  /**
   * One logical call through the default pipeline built from the config, the tool's policy and
   * `options`. Cold: nothing is sent until it is subscribed. Bad input errors on subscription with
   * `MCP_TX_VALIDATION` and nothing is sent. `args` are checked and copied when the call is made:
   * every attempt sends that copy (`call.request.args`, frozen), whatever is changed in `args` later.
   *
   * @example
   * tx.call$('get_weather', { city: 'Lyon' }).subscribe(({ data, meta }) => console.log(data, meta.attempts));
   */
  call$(name: string, args?: JsonObject, options?: TxCallOptions): TxCall;
  /**
   * {@link McpTx.call$} as a Promise.
   *
   * @example
   * const { data } = await tx.call('get_weather', { city: 'Lyon' }, { timeoutMs: 5_000 });
   */
  call(name: string, args?: JsonObject, options?: TxCallOptions): Promise<TxResult>;
  /**
   * One bare attempt, no policies: the primitive to compose operators on by hand. Like
   * {@link McpTx.call$}, `args` are checked and copied when the call is made; every subscription
   * (every retry) sends that frozen copy.
   *
   * @example
   * tx.attempt$('charge', { cents: 500 }, { idempotencyKey: 'order-42' }).pipe(retryWithPolicy());
   */
  attempt$(name: string, args?: JsonObject, options?: TxCallOptions): TxCall;
  /**
   * Registers the policy `call$` applies to tool `name` (merged over the config's). Returns `this`.
   *
   * @example
   * tx.tool('charge', { timeoutMs: 10_000, idempotencyKey: (args) => `charge-${args.orderId}` });
   */
  tool(name: string, policy: ToolPolicy): McpTx;
  /** The registered per-tool policies. */
  tools(): Readonly<Record<string, ToolPolicy>>;
  /**
   * Stops new calls, waits for the ones in flight (at most `timeoutMs`, default the config's
   * `closeTimeoutMs`), cancels what is left, then closes the SDK client.
   *
   * @example
   * await tx.close({ timeoutMs: 2_000 });
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}
