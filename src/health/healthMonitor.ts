import { asyncScheduler, type Observable, Subject } from 'rxjs';
import { z } from 'zod';
import { parseOrThrow, SchedulerSchema } from '../config/validators.js';
import type { CounterLike, HistogramLike, MeterLike } from '../core/otelTypes.js';
import { percentile } from '../core/percentile.js';
import { isoTime } from '../core/time.js';
import type { TxMeta } from '../core/types.js';

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
 * - `scheduler` (`asyncScheduler`): whose clock stamps reports (`generatedAt`) and alerts (`at`).
 *
 * @example
 * const health = new HealthMonitor({ alertThreshold: 0.95, window: 500, meter: metrics.getMeter('agent') });
 */
export type HealthMonitorOptions = z.input<typeof HealthMonitorOptionsSchema>;

/**
 * How one tool has been doing over the monitor's window (its last `window` calls). A success is a
 * call whose status is `completed`; rates are 0 to 1 (`successRate` is 1 with no calls).
 *
 * @example
 * const charge = health.health('charge');
 * if (charge) console.log(charge.successRate, charge.averageAttempts, charge.latencyMs.p95);
 */
export interface ToolHealth {
  readonly tool: string;
  readonly calls: number;
  readonly successes: number;
  readonly failures: number;
  readonly successRate: number;
  readonly averageAttempts: number;
  /** Share of calls answered from an idempotency store. */
  readonly duplicateRate: number;
  /** Percentiles of the calls' `durationMs` (retries and their delays included). */
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
  /** Calls seen since the monitor started, beyond the window. */
  readonly totalCalls: number;
}

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
 * `totals` are weighted by each tool's calls in its window.
 *
 * @example
 * const { healthy, totals, tools } = health.report();
 * console.log(healthy, totals.successRate, tools.map((tool) => tool.tool));
 */
export interface HealthReport {
  readonly generatedAt: string;
  readonly healthy: boolean;
  readonly totals: { readonly calls: number; readonly successRate: number; readonly averageAttempts: number };
  readonly tools: readonly ToolHealth[];
}

interface Outcome {
  readonly ok: boolean;
  readonly attempts: number;
  readonly duplicate: boolean;
  readonly durationMs: number;
}

class ToolWindow {
  readonly outcomes: Outcome[] = [];
  total = 0;
  /** Under the threshold now: an alert was sent and is not re-armed until the rate recovers. */
  alerting = false;
}

/**
 * Per-tool health from call metadata: success rate, average attempts, duplicate rate and latency
 * percentiles over each tool's last `window` calls, for the `maxTools` tools recorded most
 * recently. `alerts$` emits once when a tool's success rate
 * falls under `alertThreshold` (with at least `minCalls` in the window) and again only after it has
 * recovered. With a `meter`, also records the OpenTelemetry `mcp.client.operation.duration`
 * histogram (seconds) and the `mcp_tx.calls` and `mcp_tx.attempts` counters.
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
  }

  /** Takes the outcome of one logical call (its final metadata). */
  record(meta: TxMeta): void {
    const window = this.windowOf(meta.tool);
    const ok = meta.status === 'completed';
    window.outcomes.push({
      ok,
      attempts: meta.attempts,
      duplicate: meta.duplicate,
      durationMs: meta.durationMs,
    });
    if (window.outcomes.length > this.settings.window) window.outcomes.shift();
    window.total += 1;
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

  /** The health of one tool, or undefined if it was never called. */
  health(tool: string): ToolHealth | undefined {
    const window = this.windows.get(tool);
    return window === undefined ? undefined : summarize(tool, window);
  }

  /** Every tool's health (the least recently recorded first) and the totals, now. */
  report(): HealthReport {
    const tools = [...this.windows].map(([tool, window]) => summarize(tool, window));
    const calls = tools.reduce((sum, tool) => sum + tool.calls, 0);
    const weighted = (pick: (tool: ToolHealth) => number) =>
      calls === 0 ? 0 : tools.reduce((sum, tool) => sum + pick(tool) * tool.calls, 0) / calls;
    const successRate = calls === 0 ? 1 : weighted((tool) => tool.successRate);
    return {
      generatedAt: isoTime(this.settings.scheduler.now()),
      healthy: tools.every((tool) => !this.windows.get(tool.tool)?.alerting),
      totals: { calls, successRate, averageAttempts: weighted((tool) => tool.averageAttempts) },
      tools,
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
    const { successRate } = summarize(tool, window);
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

function summarize(tool: string, window: ToolWindow): ToolHealth {
  const { outcomes } = window;
  const calls = outcomes.length;
  const successes = outcomes.filter((outcome) => outcome.ok).length;
  const share = (count: number) => (calls === 0 ? 0 : count / calls);
  const durations = outcomes.map((outcome) => outcome.durationMs).sort((a, b) => a - b);
  return {
    tool,
    calls,
    successes,
    failures: calls - successes,
    successRate: calls === 0 ? 1 : successes / calls,
    averageAttempts: share(outcomes.reduce((sum, outcome) => sum + outcome.attempts, 0)),
    duplicateRate: share(outcomes.filter((outcome) => outcome.duplicate).length),
    latencyMs: {
      p50: percentile(durations, 0.5),
      p95: percentile(durations, 0.95),
      p99: percentile(durations, 0.99),
    },
    totalCalls: window.total,
  };
}
