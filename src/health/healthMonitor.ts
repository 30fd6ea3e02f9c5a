import { asyncScheduler, type Observable, Subject } from 'rxjs';
import * as z from 'zod';
import { parseOrThrow, SchedulerSchema } from '../config/validators.js';
import type { ConnectionState } from '../connection/connectionState.js';
import type { CounterLike, HistogramLike, MeterLike } from '../core/otelTypes.js';
import { isoTime } from '../core/time.js';
import type { TxMeta } from '../core/types.js';
import type { IdempotencyStore, IdempotencyStoreStats } from '../idempotency/store.js';
import { type ConnectionHealth, ConnectionTracker } from './connectionHealth.js';
import { type DedupeWindowAlert, StoreWatch } from './storeWatch.js';
import { type ToolHealth, ToolWindow } from './toolWindow.js';

export type { ConnectionHealth } from './connectionHealth.js';
export type { DedupeWindowAlert } from './storeWatch.js';
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
 * health.alerts$.subscribe((alert) => {
 *   if (alert.kind === 'tool')
 *     console.warn(`${alert.tool}: ${(alert.successRate * 100).toFixed(0)} % < ${alert.threshold * 100} %`);
 * });
 */
export interface ToolAlert {
  readonly kind: 'tool';
  readonly tool: string;
  readonly successRate: number;
  readonly threshold: number;
  readonly at: string;
}

/**
 * What `alerts$` emits: a {@link ToolAlert} (`kind: 'tool'`) when a tool's success rate falls under
 * the threshold, a {@link DedupeWindowAlert} (`kind: 'dedupe_window_shortened'`) when the watched
 * idempotency store evicted keys before their window ended.
 *
 * @example
 * health.alerts$.subscribe((alert) =>
 *   console.warn(alert.kind === 'tool' ? `${alert.tool} failing` : `dedupe window shortened (${alert.evictedEarly})`),
 * );
 */
export type HealthAlert = ToolAlert | DedupeWindowAlert;

/**
 * `report()`: every tool's health and the whole. `healthy` is false while some tool is alerting,
 * and while the watched idempotency store's window is shortened (see `watchIdempotencyStore`);
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
  /** The watched idempotency store's `stats()`, once `watchIdempotencyStore` was given one that has them. */
  readonly idempotency?: IdempotencyStoreStats;
}

/**
 * Per-tool health from call metadata: success rate, average attempts, duplicate rate and latency
 * percentiles over each tool's last `window` calls, for the `maxTools` tools recorded most
 * recently. `alerts$` emits once when a tool's success rate
 * falls under `alertThreshold` (with at least `minCalls` in the window) and again only after it has
 * recovered. With a `meter`, also records the OpenTelemetry `mcp.client.operation.duration`
 * histogram (seconds) and the `mcp_tx.calls`, `mcp_tx.attempts` and `mcp_tx.reconnects` counters.
 * Told of the McpTx's connection (`recordConnection`), `report().connection` counts its reconnects
 * and the time it spent disconnected. Watching an idempotency store (`watchIdempotencyStore`), it
 * reports the store's stats and alerts when the store's dedupe window was shortened.
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
  private storeWatch: StoreWatch | undefined;

  /** One alert per tool's crossing under the threshold, and one per shortening of the watched store's window. */
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
      'gen_ai.operation.name': 'execute_tool',
      ...(ok ? {} : { 'error.type': meta.errorCode ?? meta.status }),
    };
    this.duration?.record(meta.durationMs / 1_000, attributes);
    this.calls?.add(1, { ...attributes, 'mcp_tx.status': meta.status, 'mcp_tx.duplicate': meta.duplicate });
    this.attempts?.add(meta.attempts, attributes);
    this.checkAlert(meta.tool, window);
    this.checkStore(this.settings.scheduler.now());
  }

  /**
   * Watches an idempotency store that has `stats()` (the in-memory one: an McpTx whose `monitor`
   * this is watches its default dedupe store): `report().idempotency` is then its stats, and when
   * its `evictedEarly` grows (keys dropped to make room before their window ended, so a retry of
   * one would run again) `alerts$` emits one {@link DedupeWindowAlert} and `report().healthy` is
   * false until the store's `windowMs` has passed with no further early eviction. The store is
   * checked on each recorded call and each `report()`. One store per monitor: a later call
   * watches the new store instead.
   *
   * @example
   * const store = memoryIdempotencyStore({ maxBytes: 64 * 2 ** 20 });
   * health.watchIdempotencyStore(store);
   * health.report().idempotency; // { entries: 0, evictedEarly: 0, bytes: 0, maxBytes: 67108864, windowMs: 300000 }
   */
  watchIdempotencyStore(store: IdempotencyStore): void {
    if (this.storeWatch?.store !== store) this.storeWatch = new StoreWatch(store);
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
    const idempotency = this.checkStore(now);
    const toolsHealthy = tools.every((tool) => !this.windows.get(tool.tool)?.alerting);
    return {
      generatedAt: isoTime(now),
      healthy: toolsHealthy && !this.storeWatch?.shortened(now),
      totals: { calls, successRate, averageAttempts: weighted((tool) => tool.averageAttempts) },
      tools,
      ...(connection === undefined ? {} : { connection }),
      ...(idempotency === undefined ? {} : { idempotency }),
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

  /** The watched store's stats at `now`; alerts when its window was just shortened. */
  private checkStore(now: number): IdempotencyStoreStats | undefined {
    const checked = this.storeWatch?.check(now);
    if (checked?.alert !== undefined) this.alerts.next(checked.alert);
    return checked?.stats;
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
      kind: 'tool',
      tool,
      successRate,
      threshold: alertThreshold,
      at: isoTime(this.settings.scheduler.now()),
    });
  }
}
