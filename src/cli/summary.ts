import { percentile } from '../core/percentile.js';
import type { ResultLine } from './journal.js';

/** What a batch run came to. */
export interface BatchSummary {
  readonly lines: number;
  readonly completed: number;
  /** Calls that failed and input lines that were not calls. */
  readonly failed: number;
  /** Results served from an idempotency store instead of running the tool again. */
  readonly duplicates: number;
  readonly attempts: number;
  /** Lines finished in an earlier run, taken from the journal. */
  readonly fromJournal: number;
  /** Calls made by this run, and how long it took. */
  readonly calls: number;
  readonly elapsedMs: number;
  /** Latency of this run's calls (nearest rank). */
  readonly latencyMs: { readonly p50: number; readonly p95: number };
  /** This run's calls per second. */
  readonly throughput: number;
  /** Times the connection to the server was made again during the run (shown when some were). */
  readonly reconnects?: number;
}

/**
 * Sums up results: counts over every line, latency and throughput over the calls this run made.
 *
 * @example
 * const summary = summarize(results, Date.now() - startedAt);
 * io.stderr(formatSummary(summary));
 */
export function summarize(results: readonly ResultLine[], elapsedMs: number): BatchSummary {
  const count = (test: (result: ResultLine) => boolean) => results.filter(test).length;
  const ran = results.filter((result) => result.meta !== undefined && !result.fromJournal);
  const durations = ran.map((result) => result.meta?.durationMs ?? 0).sort((a, b) => a - b);
  return {
    lines: results.length,
    completed: count((result) => result.ok),
    failed: count((result) => !result.ok),
    duplicates: count((result) => result.meta?.duplicate === true),
    attempts: results.reduce((sum, result) => sum + (result.meta?.attempts ?? 0), 0),
    fromJournal: count((result) => result.fromJournal === true),
    calls: ran.length,
    elapsedMs,
    latencyMs: { p50: percentile(durations, 0.5), p95: percentile(durations, 0.95) },
    throughput: elapsedMs === 0 ? 0 : Math.round((ran.length * 1_000) / elapsedMs),
  };
}

/**
 * The summary as a few aligned lines.
 *
 * @example
 * formatSummary(summary);
 * // summary
 * //   lines       200 (0 from the journal)
 * //   completed   200 ...
 */
export function formatSummary(summary: BatchSummary): string {
  const rows: [string, string][] = [
    ['lines', `${summary.lines} (${summary.fromJournal} from the journal)`],
    ['completed', String(summary.completed)],
    ['failed', String(summary.failed)],
    ['duplicates', String(summary.duplicates)],
    ['attempts', String(summary.attempts)],
    ['latency', `p50 ${summary.latencyMs.p50} ms, p95 ${summary.latencyMs.p95} ms`],
    [
      'throughput',
      `${summary.throughput} calls/s (${summary.calls} call${summary.calls === 1 ? '' : 's'} in ${(summary.elapsedMs / 1_000).toFixed(2)} s)`,
    ],
  ];
  if ((summary.reconnects ?? 0) > 0) rows.push(['reconnects', String(summary.reconnects)]);
  return `summary\n${table(rows)}`;
}

/**
 * Rows of cells as aligned text: each column padded to its widest cell, each row indented.
 *
 * @example
 * table([['tool', 'calls'], ['charge', '120']]); // '  tool    calls\n  charge  120\n'
 */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows
    .map(
      (row) =>
        `  ${row
          .map((cell, column) => cell.padEnd(widths[column] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
