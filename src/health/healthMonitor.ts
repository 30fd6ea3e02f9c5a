import { asyncScheduler, type Observable, Subject } from 'rxjs';
import { z } from 'zod';
import { parseOrThrow, SchedulerSchema } from '../config/validators.js';
import type { ConnectionState } from '../connection/connectionState.js';
import type { CounterLike, HistogramLike, MeterLike } from '../core/otelTypes.js';
import { isoTime } from '../core/time.js';
import type { TxMeta } from '../core/types.js';
import { type ConnectionHealth, ConnectionTracker } from './connectionHealth.js';
import { type ToolHealth, ToolWindow } from './toolWindow.js';

export type { ConnectionHealth } from './connectionHealth.js';
export type { ToolHealth } from './toolWindow.js';

const HealthMonitorOptionsSchema = z.strictObject({
  alertThreshold: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').default(0.8),
  window: z.number().int('must be a whole number').min(1, 'must be at least 1').default(100),
  minCalls: z.number().int('must be a whole number').min(1, 'must be at least 1').default(5),
  maxTools: z.number().int('must be a whole number').min(1, 'must be at least 1').default(1_000),
  meter: z
    .custom<MeterLike>(
      (value) => typeof (value as MeterLike | null)?.createHistogram === 'function',
      'must be an OpenTelemetry Meter',
    )
    .optional(),
  scheduler: SchedulerSchema.default(asyncScheduler),
});

/**
 * Options of {@link HealthMonitor}, all optional:
 *
 * - `alertThreshold` (0.8): a tool whose success rate falls under it raises an alert; 0 to 1.
 * - `window` (100): how many of each tool's last calls the figures are computed over.
 * - `minCalls` (5): calls a tool's window must hold before it can alert.
 * - `maxTools` (1 000): how many tools it keeps figures for; past that, the tool recorded least
 *   recently is forgotten (so made-up tool names cannot grow it without bound).
 * - `meter` (none): an OpenTelemetry `Meter` to record the duration histogram and call counters on.
 * - `scheduler` (`asyncScheduler`): whose clock stamps reports (`generatedAt`) and alerts (`at`), and
 *   times the connection's disconnections.
 *
 * @example
 * const health = new HealthMonitor({ alertThreshold: 0.95, window: 500, meter: metrics.getMeter('agent') });
 */
export type HealthMonitorOptions = z.input<typeof HealthMonitorOptionsSchema>;

/**
 * Emitted on `alerts$` when a tool's success rate falls under the threshold (`at`: ISO 8601).
 *
 * @example
 * health.alerts$.subscribe(({ tool, successRate, threshold }) =>
 *   console.warn(`${tool}: ${(successRate * 100).toFixed(0)} % < ${threshold * 100} %`),
 * );
 */
export interface HealthAlert {
  readonly tool: string;
  readonly successRate: number;
  readonly threshold: number;
  readonly at: string;
}

/**
 * `report()`: every tool's health and the whole. `healthy` is false while some tool is alerting;
 * `totals` are weighted by each tool's calls in its window. `connection` (once the monitor has been
 * told of one with `recordConnection`) says where the McpTx's connection stands, how many times it
 * reconnected and how long it went without a server; it does not change `healthy`.
 *
 * @example
 * const { healthy, totals, tools, connection } = health.report();
 * console.log(healthy, totals.successRate, tools.map((tool) => tool.tool), connection?.reconnects);
 */
export interface HealthReport {
  readonly generatedAt: string;
  readonly healthy: boolean;
  readonly totals: { readonly calls: number; readonly successRate: number; readonly averageAttempts: number };
  readonly tools: readonly ToolHealth[];
  readonly connection?: ConnectionHealth;
}

/**
 * Per-tool health from call metadata: success rate, average attempts, duplicate rate and latency
 * percentiles over each tool's last `window` calls, for the `maxTools` tools recorded most
 * recently. `alerts$` emits once when a tool's success rate
 * falls under `alertThreshold` (with at least `minCalls` in the window) and again only after it has
 * recovered. With a `meter`, also records the OpenTelemetry `mcp.client.operation.duration`
 * histogram (seconds) and the `mcp_tx.calls`, `mcp_tx.attempts` and `mcp_tx.reconnects` counters.
 * Told of the McpTx's connection (`recordConnection`), `report().connection` counts its reconnects
 * and the time it spent disconnected.
 *
 * @example
 * const health = new HealthMonitor({ alertThreshold: 0.9 });
 * health.alerts$.subscribe(({ tool, successRate }) => console.warn(`${tool} at ${successRate}`));
 * tx.attempt$('search', { q }).pipe(retryWithPolicy(), monitor(health));
 * console.log(health.report());
 */
export class HealthMonitor {
  private readonly settings: z.output<typeof HealthMonitorOptionsSchema>;
  private readonly windows = new Map<string, ToolWindow>();
  private readonly alerts = new Subject<HealthAlert>();
  private readonly duration?: HistogramLike;
  private readonly calls?: CounterLike;
  private readonly attempts?: CounterLike;
  private readonly reconnects?: CounterLike;
  private readonly connection = new ConnectionTracker();

  /** One alert per crossing under the threshold. */
  readonly alerts$: Observable<HealthAlert> = this.alerts.asObservable();

  constructor(options: HealthMonitorOptions = {}) {
    this.settings = parseOrThrow(HealthMonitorOptionsSchema, options, 'options');
    const { meter } = this.settings;
    this.duration = meter?.createHistogram('mcp.client.operation.duration', {
      description: 'Duration of MCP client operations (tools/call through mcp-tx)',
      unit: 's',
    });
    this.calls = meter?.createCounter('mcp_tx.calls', {
      description: 'Logical tool calls, by tool and status',
    });
    this.attempts = meter?.createCounter('mcp_tx.attempts', { description: 'Attempts made for tool calls' });
    this.reconnects = meter?.createCounter('mcp_tx.reconnects', {
      description: 'Times the connection to the MCP server was made again after it was lost',
    });
  }

  /** Takes the outcome of one logical call (its final metadata). */
  record(meta: TxMeta): void {
    const window = this.windowOf(meta.tool);
    const ok = meta.status === 'completed';
    window.push(
      { ok, attempts: meta.attempts, duplicate: meta.duplicate, durationMs: meta.durationMs },
      this.settings.window,
    );
    const attributes = {
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': meta.tool,
      ...(ok ? {} : { 'error.type': meta.errorCode ?? meta.status }),
    };
    this.duration?.record(meta.durationMs / 1_000, attributes);
    this.calls?.add(1, { ...attributes, 'mcp_tx.status': meta.status, 'mcp_tx.duplicate': meta.duplicate });
    this.attempts?.add(meta.attempts, attributes);
    this.checkAlert(meta.tool, window);
  }

  /**
   * Takes one value of an McpTx's `connection$` (the McpTx whose `monitor` this is calls it for
   * each): counts a reconnect on each return to `connected` after the first, and the time spent
   * disconnected in between, on this monitor's scheduler clock. One McpTx per monitor.
   *
   * @example
   * tx.connection$.subscribe((state) => health.recordConnection(state)); // a monitor not in tx.config
   */
  recordConnection(state: ConnectionState): void {
    if (this.connection.record(state, this.settings.scheduler.now())) this.reconnects?.add(1);
  }

  /** The health of one tool, or undefined if it was never called. */
  health(tool: string): ToolHealth | undefined {
    const window = this.windows.get(tool);
    return window === undefined ? undefined : window.summarize(tool);
  }

  /** Every tool's health (the least recently recorded first) and the totals, now. */
  report(): HealthReport {
    const tools = [...this.windows].map(([tool, window]) => window.summarize(tool));
    const calls = tools.reduce((sum, tool) => sum + tool.calls, 0);
    const weighted = (pick: (tool: ToolHealth) => number) =>
      calls === 0 ? 0 : tools.reduce((sum, tool) => sum + pick(tool) * tool.calls, 0) / calls;
    const successRate = calls === 0 ? 1 : weighted((tool) => tool.successRate);
    const now = this.settings.scheduler.now();
    const connection = this.connection.report(now);
    return {
      generatedAt: isoTime(now),
      healthy: tools.every((tool) => !this.windows.get(tool.tool)?.alerting),
      totals: { calls, successRate, averageAttempts: weighted((tool) => tool.averageAttempts) },
      tools,
      ...(connection === undefined ? {} : { connection }),
    };
  }

  /** Completes `alerts$`. */
  dispose(): void {
    this.alerts.complete();
  }

  /** The tool's window, moved to the end of the map (most recently recorded); the least recent past `maxTools` is dropped. */
  private windowOf(tool: string): ToolWindow {
    const window = this.windows.get(tool) ?? new ToolWindow();
    this.windows.delete(tool);
    this.windows.set(tool, window);
    if (this.windows.size > this.settings.maxTools)
      this.windows.delete(this.windows.keys().next().value as string);
    return window;
  }

  private checkAlert(tool: string, window: ToolWindow): void {
    const { alertThreshold, minCalls } = this.settings;
    if (window.outcomes.length < minCalls) return;
    const { successRate } = window.summarize(tool);
    if (successRate >= alertThreshold) {
      window.alerting = false;
      return;
    }
    if (window.alerting) return;
    window.alerting = true;
    this.alerts.next({
      tool,
      successRate,
      threshold: alertThreshold,
      at: isoTime(this.settings.scheduler.now()),
    });
  }
}
