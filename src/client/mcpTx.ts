import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Task } from '@modelcontextprotocol/sdk/types.js';
import type { Observable } from 'rxjs';
import type { TxCall } from '../call/call.js';
import type { ConnectionState } from '../connection/connectionState.js';
import type { JsonObject, TxRequest, TxResult } from '../core/types.js';
import type { ResumeOptions } from '../tasks/taskClient.js';
import type { PendingTask, TaskEvent, TaskOnlyOptions } from '../tasks/taskOptions.js';
import type { ResolvedTxConfig, ToolPolicy, TxCallOptions } from './options.js';

/**
 * Reliable MCP tool calls on one SDK `Client`: one the user connected, or one mcp-tx connects and
 * keeps connected from a transport factory. Made by {@link createMcpTx}.
 *
 * @example
 * const tx = createMcpTx(client, { retry: { maxAttempts: 5 } });
 * tx.tool('charge', { idempotencyKey: (args) => `charge-${String(args.orderId)}` });
 * const { data, meta } = await tx.call('charge', { orderId: 42, cents: 500 });
 * console.log(data, meta.attempts, tx.activeRequests.size);
 * await tx.close();
 */
export interface McpTx {
  /**
   * The SDK client calls go through: the one passed to `createMcpTx`, or the one mcp-tx made for a
   * transport factory — the same object across reconnects, so handlers set on it stay.
   */
  readonly client: Client;
  /** The validated configuration, defaults filled in. */
  readonly config: ResolvedTxConfig;
  /**
   * Whether the connected server advertised `experimental.mcp_tx` (read again on every connect); a
   * block without a `version`, even `{}`, counts (read as 0.1.0, as the Python MCP-Tx client does).
   */
  readonly serverSupportsTx: boolean;
  /**
   * Whether the connected server runs a repeated request at most once: it advertises MCP-Tx with the
   * `dedupe` feature (a `txTool` server), or speaks MCP-Tx and the config's `trustServerDedupe` is
   * set. Only then is a keyed call retried after an ambiguous failure (unless its tool is annotated
   * idempotent, or `retryAmbiguous`), and a saga settles its unknown steps.
   */
  readonly serverDedupes: boolean;
  /**
   * Where the connection stands: `connecting`, `connected`, `reconnecting` or `closed`, with the
   * attempt, since when, the last error and whether the server speaks MCP-Tx (see
   * {@link ConnectionState}). Replays the current value to each subscriber, then every change;
   * completes after `closed`. For a client the user connected: `connected` (attempt 0) from the
   * start, `closed` after `close()`.
   *
   * @example
   * tx.connection$.subscribe(({ state, attempt, error }) => console.log(state, attempt, error?.message));
   */
  readonly connection$: Observable<ConnectionState>;
  /**
   * Resolves at the first `connected`; rejects with the `TxError` that closed the McpTx first (a bad
   * transport factory, `maxAttempts` reached, `close()`). Left unobserved, its rejection is not an
   * unhandled rejection.
   *
   * @example
   * const tx = createMcpTx(connect);
   * await tx.ready; // the first connection is made
   */
  readonly ready: Promise<void>;
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
   * A long-running call as an MCP task (spec 2025-11-25): creates it (through the pipeline's
   * throttle, breaker, retry, dedupe, record and monitor, on the creation's idempotency key), then
   * polls it at the server's `pollInterval`: `created`, a `status` per change, then `result` (the
   * same `data` and `meta` as `call$`), one trace span for the whole task. Unsubscribing detaches
   * (the task goes on; `cancelOnUnsubscribe: true` cancels it). A tool or server without task
   * support runs as a plain call and emits only `result`. See {@link TaskOnlyOptions}.
   *
   * @example
   * tx.task$('build', { ref: 'main' }, { idempotencyKey: 'build-main' }).subscribe((event) => console.log(event.type));
   */
  task$(name: string, args?: JsonObject, options?: TxCallOptions & TaskOnlyOptions): Observable<TaskEvent>;
  /**
   * Re-attaches to a task from any process by its id: its status until it ends, then its result.
   *
   * @example
   * tx.resumeTask$(taskId, { tool: 'build' }).subscribe((event) => console.log(event.type));
   */
  resumeTask$(
    taskId: string,
    options?: TxCallOptions & TaskOnlyOptions & ResumeOptions,
  ): Observable<TaskEvent>;
  /**
   * Cancels a task on the server (`tasks/cancel`); resolves with the task, now `cancelled`.
   *
   * @example
   * await tx.cancelTask(taskId);
   */
  cancelTask(taskId: string, options?: { timeoutMs?: number }): Promise<Task>;
  /**
   * The tasks this client's event log (`config.events`) shows created and not yet seen to end: what
   * a restarted client still waits for. Rejects with `MCP_TX_VALIDATION` without `config.events`.
   *
   * @example
   * for (const { taskId, tool } of await tx.pendingTasks()) tx.resumeTask$(taskId, { tool }).subscribe();
   */
  pendingTasks(): Promise<PendingTask[]>;
  /**
   * Stops new calls, waits for the ones in flight (at most `timeoutMs`, default the config's
   * `closeTimeoutMs`), cancels what is left, then closes the SDK client. While mcp-tx is
   * (re)connecting, or when the connection is lost during the wait, it ends at once: the waiting
   * calls fail with `MCP_TX_CANCELLED`, no timer is left and the transport is closed (a stdio
   * server process ends). A `timeoutMs` that is not a whole number from 0 to 2147483647 rejects
   * with `MCP_TX_VALIDATION` (`options.timeoutMs`) and closes nothing.
   *
   * @example
   * await tx.close({ timeoutMs: 2_000 });
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}
