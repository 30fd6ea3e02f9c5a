import { percentile } from '../core/percentile.js';

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

/** The outcome of one logical call, as a tool's window keeps it. */
export interface Outcome {
  readonly ok: boolean;
  readonly attempts: number;
  readonly duplicate: boolean;
  readonly durationMs: number;
}

/**
 * One tool's last `size` outcomes, how many it has seen in all, and whether it is alerting.
 *
 * @example
 * const window = new ToolWindow();
 * window.push({ ok: true, attempts: 1, duplicate: false, durationMs: 12 }, 100);
 * window.summarize('search').successRate; // 1
 */
export class ToolWindow {
  readonly outcomes: Outcome[] = [];
  total = 0;
  /** Under the threshold now: an alert was sent and is not re-armed until the rate recovers. */
  alerting = false;

  /** Adds an outcome, dropping the oldest past `size`. */
  push(outcome: Outcome, size: number): void {
    this.outcomes.push(outcome);
    if (this.outcomes.length > size) this.outcomes.shift();
    this.total += 1;
  }

  /** The figures of the window, for `tool`. */
  summarize(tool: string): ToolHealth {
    const { outcomes } = this;
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
      totalCalls: this.total,
    };
  }
}
