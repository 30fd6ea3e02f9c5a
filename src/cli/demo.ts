import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CircuitBreaker, defaultIsFailure } from '../breaker/circuitBreaker.js';
import type { TxConfig } from '../client/options.js';
import { isTxError, TxErrorCode } from '../core/errors.js';
import { type ConnectionHealth, HealthMonitor, type HealthReport } from '../health/healthMonitor.js';
import { tokenBucket } from '../limiter/tokenBucket.js';
import { runLines } from './batch.js';
import { openMcpTx, type ServerConnection, stdioConnection } from './connect.js';
import type { BatchLine } from './input.js';
import { type CliIo, ExitCode } from './io.js';
import { BatchJournal, type ResultLine } from './journal.js';
import { startProgress } from './progress.js';
import { formatSummary, summarize, table } from './summary.js';

const CALLS = 200;
const CONCURRENCY = 16;
const DISTINCT_ORDERS = 100;
const RATE_PER_SECOND = 400;
const TIMEOUT_MS = 1_000;
/** Enough attempts to wait out the server's restart after the crash (each waits at most TIMEOUT_MS). */
const RETRY = { maxAttempts: 8, baseDelayMs: 25, maxDelayMs: 1_000 };
/** The bundled server's first life ends on purpose after this many calls. */
const CRASH_AFTER_CALLS = 60;

/**
 * `mcp-tx demo`: the batch job on embedded defaults, nothing to install or start. Starts the bundled
 * flaky MCP-Tx server (`demoServer`) in a child process over stdio, runs a burst of 200 calls
 * through throttle, circuit breaker, retry and dedupe, then prints the summary, the health report
 * and what the server did (each order charged once, though some were sent twice and some retried).
 * The server crashes once mid-run, right after a charge and before answering it: the McpTx (made
 * with a connect factory) starts it again and reconnects, the calls cut short are sent again, and
 * the server, which keeps its charges and completed keys in a ledger file in a temporary
 * directory, answers the one it had made from there. Resolves 0 when every call completed and no
 * effect ran twice.
 *
 * @example
 * process.exitCode = await runDemo({ stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), isTTY: false });
 */
export async function runDemo(io: CliIo): Promise<ExitCode> {
  const lines = demoCalls();
  io.stdout(
    `mcp-tx demo: ${lines.length} calls to a bundled MCP-Tx server with flaky tools (a child process, over stdio)\n` +
      `pipeline: throttle ${RATE_PER_SECOND}/s → circuit breaker → retry (${RETRY.maxAttempts} attempts, ` +
      `${RETRY.baseDelayMs} ms base) → dedupe; ${CONCURRENCY} at a time, ${TIMEOUT_MS} ms per attempt\n` +
      `the server crashes once, after ${CRASH_AFTER_CALLS} calls: mcp-tx starts it again and carries on\n`,
  );
  const stateDir = await mkdtemp(join(tmpdir(), 'mcp-tx-demo-'));
  try {
    return await runAgainstDemoServer(io, lines, join(stateDir, 'ledger.jsonl'));
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

/** Runs `lines` against the demo server keeping its ledger at `ledger`, and reports. */
async function runAgainstDemoServer(
  io: CliIo,
  lines: readonly BatchLine[],
  ledger: string,
): Promise<ExitCode> {
  const pipeline = demoPipeline();
  const tx = await openMcpTx(demoServer(ledger), pipeline.config, { timeoutMs: 10_000, signal: io.signal });
  const results: ResultLine[] = [];
  const progress = startProgress(io, 'demo', lines.length);
  const startedAt = Date.now();
  let elapsedMs: number;
  let charges: Record<string, number>;
  let report: HealthReport;
  try {
    const journal = await BatchJournal.open(undefined, lines);
    const options = { concurrency: CONCURRENCY, journal, signal: io.signal };
    const outcome = await runLines(tx, lines, options, (result) => {
      results.push(result);
      progress.tick(result.ok);
    });
    elapsedMs = Date.now() - startedAt;
    if (outcome === 'interrupted') return ExitCode.Interrupted;
    ({ charges } = (await tx.call('stats', {}, { dedupe: false, monitor: false })).data as {
      charges: Record<string, number>;
    });
    report = pipeline.health.report(); // before closing: a closed connection counts as disconnected
  } finally {
    progress.stop();
    pipeline.dispose();
    await tx.close({ timeoutMs: 1_000 });
  }
  io.stdout(formatSummary(summarize(results, elapsedMs)));
  io.stdout(formatHealth(report, pipeline.breakerState()));
  const serverSide = checkServerSide(results, charges, report.connection);
  io.stdout(serverSide.text);
  return results.every((result) => result.ok) && serverSide.exactlyOnce ? ExitCode.Ok : ExitCode.Failed;
}

/** The demo's pipeline: throttle, breaker (its openings counted), retry, dedupe, and a health monitor. */
function demoPipeline() {
  const health = new HealthMonitor({ window: CALLS });
  // The breaker watches the tools; the connection's outages are the reconnect's business (a crash
  // fails the calls in flight at once, and the retry sends them again once reconnected).
  const breaker = new CircuitBreaker({
    failureThreshold: 20,
    recoveryTimeoutMs: 1_000,
    isFailure: (error) => defaultIsFailure(error) && !isTxError(error, TxErrorCode.NetworkError),
  });
  let opened = 0;
  const watch = breaker.state$.subscribe((state) => {
    if (state === 'open') opened += 1;
  });
  const config: TxConfig = {
    timeoutMs: TIMEOUT_MS,
    retry: RETRY,
    limiter: tokenBucket({ ratePerSecond: RATE_PER_SECOND, burst: 40 }),
    breaker,
    monitor: health,
    reconnect: { baseDelayMs: 10, maxDelayMs: 1_000 }, // start the server again at once
  };
  return {
    config,
    health,
    breakerState: () => `breaker ${breaker.state} (opened ${opened} times)`,
    dispose: () => watch.unsubscribe(),
  };
}

/**
 * The burst: three charges for two lookups. Charges carry an idempotency key per order, and the
 * last 20 repeat the first 20 orders (a client sending again what it already sent).
 */
function demoCalls(): BatchLine[] {
  let charges = 0;
  let lookups = 0;
  return Array.from({ length: CALLS }, (_, index): BatchLine => {
    const line = index + 1;
    if (index % 5 >= 3) return { line, tool: 'lookup', arguments: { sku: `sku-${lookups++}` } };
    const order = `order-${charges++ % DISTINCT_ORDERS}`;
    return { line, tool: 'charge', arguments: { order, cents: 500 }, idempotencyKey: order };
  });
}

/**
 * The bundled server, started in a child process for each connection: the compiled .js next to
 * this file, or the .ts through tsx. Every life keeps its charges in `ledger`; the first one
 * crashes on purpose after {@link CRASH_AFTER_CALLS} calls.
 */
function demoServer(ledger: string): ServerConnection {
  const fromSource = import.meta.url.endsWith('.ts');
  const script = fileURLToPath(new URL(`./demoServer.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const tsx = () => pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const node = fromSource ? ['--import', tsx(), script] : [script];
  return stdioConnection(
    process.execPath,
    (connection) => [
      ...node,
      '--ledger',
      ledger,
      ...(connection === 1 ? ['--crash-after', String(CRASH_AFTER_CALLS)] : []),
    ],
    'the demo server',
  );
}

function formatHealth(report: HealthReport, breaker: string): string {
  const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
  const rows = [
    ['tool', 'calls', 'success', 'attempts', 'duplicates', 'p50', 'p95'],
    ...[...report.tools]
      .sort((a, b) => a.tool.localeCompare(b.tool))
      .map((tool) => [
        tool.tool,
        String(tool.calls),
        percent(tool.successRate),
        tool.averageAttempts.toFixed(2),
        percent(tool.duplicateRate),
        `${tool.latencyMs.p50} ms`,
        `${tool.latencyMs.p95} ms`,
      ]),
  ];
  const verdict = `${report.healthy ? 'healthy' : 'unhealthy'}, success ${percent(report.totals.successRate)}, ${breaker}`;
  const { connection } = report;
  const reconnects = `${connection?.reconnects ?? 0} reconnect${connection?.reconnects === 1 ? '' : 's'}`;
  const connected = `  connection ${reconnects}, ${connection?.disconnectedMs ?? 0} ms disconnected\n`;
  return `health\n${table(rows)}  ${verdict}\n${connected}`;
}

/**
 * What the server did: each order charged exactly once (its ledger says, across the crash), what
 * retries and dedupe absorbed, and the crash: how long the reconnect took, and how many charges
 * cut short by it the server answered from its ledger.
 */
function checkServerSide(
  results: readonly ResultLine[],
  charges: Readonly<Record<string, number>>,
  connection: ConnectionHealth | undefined,
): { exactlyOnce: boolean; text: string } {
  const orders = Object.keys(charges).length;
  const effects = Object.values(charges).reduce((sum, count) => sum + count, 0);
  const retried = (tool: string) =>
    results.filter((result) => result.tool === tool && (result.meta?.attempts ?? 1) > 1).length;
  const chargeRequests = results.filter((result) => result.tool === 'charge').length;
  const fromLedger = results.filter(
    (result) => result.tool === 'charge' && result.meta?.duplicate === true && result.meta.attempts > 0,
  ).length;
  const exactlyOnce = orders === DISTINCT_ORDERS && effects === DISTINCT_ORDERS;
  const reconnects = connection?.reconnects ?? 0;
  const crash =
    reconnects === 0
      ? `  the server did not crash (no reconnect)\n`
      : `  server crashed after ${CRASH_AFTER_CALLS} calls; reconnected in ${connection?.disconnectedMs} ms` +
        `${reconnects > 1 ? ` (${reconnects} reconnects)` : ''}, ` +
        `${fromLedger} charge${fromLedger === 1 ? '' : 's'} cut short answered from its ledger\n`;
  return {
    exactlyOnce,
    text:
      `server side\n` +
      `  ${chargeRequests} charge requests for ${DISTINCT_ORDERS} orders: ${effects} charges made, ` +
      `${exactlyOnce ? 'each order exactly once' : 'NOT exactly once'}\n` +
      `  retried: ${retried('charge')} charges, ${retried('lookup')} lookups ` +
      `(after TEMPORARY_FAILURE, a lookup that hung, or the crash)\n` +
      crash,
  };
}
