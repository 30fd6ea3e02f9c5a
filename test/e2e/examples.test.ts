import { describe, expect, it } from 'vitest';
import { main as batch } from '../../examples/batch.js';
import { main as circuitBreaker } from '../../examples/circuit-breaker.js';
import { main as config } from '../../examples/config.js';
import { main as customOperator } from '../../examples/custom-operator.js';
import { main as eventSourcing } from '../../examples/event-sourcing.js';
import { main as faultyTransport } from '../../examples/faulty-transport.js';
import { main as gateway } from '../../examples/gateway.js';
import { main as monitoring } from '../../examples/monitoring.js';
import { main as operators } from '../../examples/operators.js';
import { main as quickstart } from '../../examples/quickstart.js';
import { main as rateLimit } from '../../examples/rate-limit.js';
import { main as reactiveSearch } from '../../examples/reactive-search.js';
import { main as saga } from '../../examples/saga.js';
import { main as stdio } from '../../examples/stdio/client.js';
import { main as streamableHttp } from '../../examples/streamable-http.js';
import { main as tracing } from '../../examples/tracing.js';
import { main as workflow } from '../../examples/workflow.js';

const quiet = () => undefined;

describe('examples', () => {
  it('quickstart: retries a flaky tool, creates each keyed order once, stops bad input', async () => {
    const lines: string[] = [];
    const summary = await quickstart((line) => lines.push(line));
    expect(summary).toEqual({ ordersCreated: 3, duplicates: 1, syncAttempts: 2, rejected: true });
    expect(lines[0]).toBe('connected; server speaks MCP-Tx: true');
    expect(lines.join('\n')).toContain('MCP_TX_VALIDATION');
  });

  it('workflow: a three-step pipeline, and its re-run repeats nothing', async () => {
    const summary = await workflow(quiet);
    expect(summary.status).toBe('completed');
    expect(summary.rerunDuplicates).toBe(3);
    expect(Object.values(summary.effects)).toEqual([1, 1, 1]);
  });

  it('circuit-breaker: trips on an outage and closes after a probe', async () => {
    expect((await circuitBreaker(quiet)).transitions).toEqual(['closed', 'open', 'half-open', 'closed']);
  });

  it('tracing: one span per logical call, a retry event on the retried one', async () => {
    expect((await tracing(quiet)).spans).toEqual([
      { name: 'tools/call get_stock', events: 0 },
      { name: 'tools/call sync_inventory', events: 1 },
    ]);
  });

  it('rate-limit: 100 calls, none dropped, no faster than the budget', async () => {
    const { completed, served, seconds } = await rateLimit(quiet);
    expect([completed, served]).toEqual([100, 100]);
    expect(seconds).toBeGreaterThanOrEqual((100 - 10) / 50 - 0.05);
  });

  it('saga: a declined payment releases the reservation', async () => {
    const result = await saga(quiet);
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'payment',
      compensatedSteps: ['reserve'],
    });
  });

  it('event-sourcing: the log replays from the file', async () => {
    expect((await eventSourcing(quiet)).types).toEqual([
      'ToolCallRequested',
      'ToolCallCompleted',
      'ToolCallRequested',
      'ToolCallCompleted',
      'ToolCallRequested',
      'ToolCallFailed',
    ]);
  });

  it('monitoring: an outage raises one alert', async () => {
    expect(await monitoring(quiet)).toEqual({ alerts: 1, healthy: false });
  });

  it('reactive-search: only the last search is shown, the stale ones are cancelled on the server', async () => {
    const { shown, cancelled } = await reactiveSearch(quiet);
    expect(shown).toEqual(['p']);
    expect(cancelled).toBe(3);
  });

  it('batch: 1 000 calls with concurrency and rate, all completed', async () => {
    expect(await batch(quiet)).toEqual({ completed: 1_000, successRate: 1 });
  });

  it('gateway: an Idempotency-Key replay creates one order; reuse is 422, a bad body 400, no token 401', async () => {
    const lines: string[] = [];
    const summary = await gateway((line) => lines.push(line));
    expect(summary).toEqual({ statuses: [200, 200, 422, 400, 401], duplicate: true, ordersCreated: 1 });
    expect(lines.at(-1)).toMatch(/^health: ok, \d+ tools, MCP-Tx: true, 3 calls monitored$/);
  });

  it('stdio: a server in a child process charges a repeated key once, and exits on close', async () => {
    const lines: string[] = [];
    const summary = await stdio((line) => lines.push(line));
    expect(summary).toEqual({
      weather: { city: 'Lyon', sky: 'clear', celsius: 21 },
      serverDuplicate: true,
      charges: { 'order-42': 1 },
      childExited: true,
    });
    expect(lines[0]).toMatch(/^server started \(pid \d+\); it speaks MCP-Tx: true$/);
    expect(lines.filter((line) => /^(already )?charged$/.test(line))).toEqual(['charged', 'already charged']);
  }, 30_000);

  it('operators: a pipeline composed by hand runs a repeated keyed charge once', async () => {
    expect(await operators(quiet)).toEqual({ duplicates: [false, true], charges: 1 });
  });

  it('custom-operator: inside the retry it sees every attempt, outside the logical call once', async () => {
    const lines: string[] = [];
    expect(await customOperator((line) => lines.push(line))).toEqual({ attempts: [2, 2] });
    expect(lines.filter((line) => line.startsWith('sending sync_inventory'))).toHaveLength(3);
  });

  it('config: the configured default pipeline derives the key, dedupes, monitors and logs every call', async () => {
    expect(await config(quiet)).toEqual({
      key: 'charge-o-7',
      duplicate: true,
      charges: 1,
      calls: 3,
      events: 6,
    });
  });

  it('faulty-transport: lost responses and failed sends, every charge completed and made once', async () => {
    const { completed, attempts, charges, faults } = await faultyTransport(quiet);
    expect(completed).toBe(30);
    expect(charges).toEqual(Array.from({ length: 30 }, () => 1));
    expect(faults.droppedResponses).toBeGreaterThan(0);
    expect(faults.failedSends).toBeGreaterThan(0);
    expect(attempts).toBeGreaterThan(30);
  });

  it('streamable-http: calls over HTTP with perRequestSignalFetch, one listener left on the shared signal', async () => {
    const { completed, listeners } = await streamableHttp(quiet);
    expect(completed).toBe(200);
    expect(listeners.perRequestSignalFetch).toBe(1);
    expect(listeners.fetch).toBeGreaterThan(1); // Node 20's fetch: one per request until garbage collection
  });
});
