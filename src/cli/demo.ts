import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CircuitBreaker } from '../breaker/circuitBreaker.js';
import { createMcpTx } from '../client/client.js';
import type { TxConfig } from '../client/options.js';
import { HealthMonitor, type HealthReport } from '../health/healthMonitor.js';
import { tokenBucket } from '../limiter/tokenBucket.js';
import { runLines } from './batch.js';
import { connectStdio } from './connect.js';
import type { BatchLine } from './input.js';
import { type CliIo, ExitCode } from './io.js';
import { BatchJournal, type ResultLine } from './journal.js';
import { startProgress } from './progress.js';
import { formatSummary, summarize, table } from './summary.js';

const CALLS = 200;
const CONCURRENCY = 16;
const DISTINCT_ORDERS = 100;
const RATE_PER_SECOND = 400;
const TIMEOUT_MS = 300;
const RETRY = { maxAttempts: 4, baseDelayMs: 25, maxDelayMs: 200 };

/**
 * `mcp-tx demo`: the batch job on embedded defaults, nothing to install or start. Starts the bundled
 * flaky MCP-Tx server (`demoServer`) in a child process over stdio, runs a burst of 200 calls
 * through throttle, circuit breaker, retry and dedupe, then prints the summary, the health report
 * and what the server did (each order charged once, though some were sent twice and some retried).
 * Resolves 0 when every call completed and no effect ran twice.
 *
 * @example
 * process.exitCode = await runDemo({ stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), isTTY: false });
 */
export async function runDemo(io: CliIo): Promise<ExitCode> {
  const lines = demoCalls();
  io.stdout(
    `mcp-tx demo: ${lines.length} calls to a bundled MCP-Tx server with flaky tools (a child process, over stdio)\n` +
      `pipeline: throttle ${RATE_PER_SECOND}/s → circuit breaker → retry (${RETRY.maxAttempts} attempts, ` +
      `${RETRY.baseDelayMs} ms base) → dedupe; ${CONCURRENCY} at a time, ${TIMEOUT_MS} ms per attempt\n`,
  );
  const server = await startDemoServer(io.signal);
  const pipeline = demoPipeline();
  const tx = createMcpTx(server, pipeline.config);
  const results: ResultLine[] = [];
  const progress = startProgress(io, 'demo', lines.length);
  const startedAt = Date.now();
  let elapsedMs: number;
  let charges: Record<string, number>;
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
  } finally {
    progress.stop();
    pipeline.dispose();
    await tx.close({ timeoutMs: 1_000 });
  }
  io.stdout(formatSummary(summarize(results, elapsedMs)));
  io.stdout(formatHealth(pipeline.health.report(), pipeline.breakerState()));
  const serverSide = checkServerSide(results, charges);
  io.stdout(serverSide.text);
  return results.every((result) => result.ok) && serverSide.exactlyOnce ? ExitCode.Ok : ExitCode.Failed;
}

/** The demo's pipeline: throttle, breaker (its openings counted), retry, dedupe, and a health monitor. */
function demoPipeline() {
  const health = new HealthMonitor({ window: CALLS });
  const breaker = new CircuitBreaker({ failureThreshold: 10, recoveryTimeoutMs: 1_000 });
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

/** The bundled server in a child process: the compiled .js next to this file, or the .ts through tsx. */
function startDemoServer(signal: AbortSignal | undefined): Promise<Client> {
  const fromSource = import.meta.url.endsWith('.ts');
  const script = fileURLToPath(new URL(`./demoServer.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const tsx = () => pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const args = fromSource ? ['--import', tsx(), script] : [script];
  return connectStdio(process.execPath, args, 'the demo server', { timeoutMs: 10_000, signal });
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
  return `health\n${table(rows)}  ${verdict}\n`;
}

/** What the server did: each order charged exactly once, and what retries and dedupe absorbed. */
function checkServerSide(
  results: readonly ResultLine[],
  charges: Readonly<Record<string, number>>,
): { exactlyOnce: boolean; text: string } {
  const orders = Object.keys(charges).length;
  const effects = Object.values(charges).reduce((sum, count) => sum + count, 0);
  const retried = (tool: string) =>
    results.filter((result) => result.tool === tool && (result.meta?.attempts ?? 1) > 1).length;
  const chargeRequests = results.filter((result) => result.tool === 'charge').length;
  const exactlyOnce = orders === DISTINCT_ORDERS && effects === DISTINCT_ORDERS;
  return {
    exactlyOnce,
    text:
      `server side\n` +
      `  ${chargeRequests} charge requests for ${DISTINCT_ORDERS} orders: ${effects} charges made, ` +
      `${exactlyOnce ? 'each order exactly once' : 'NOT exactly once'}\n` +
      `  retried: ${retried('charge')} charges after TEMPORARY_FAILURE, ${retried('lookup')} lookups after a timeout\n`,
  };
}
