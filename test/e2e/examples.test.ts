import { describe, expect, it } from 'vitest';
import { main as batch } from '../../examples/batch.js';
import { main as circuitBreaker } from '../../examples/circuit-breaker.js';
import { main as eventSourcing } from '../../examples/event-sourcing.js';
import { main as gateway } from '../../examples/gateway.js';
import { main as monitoring } from '../../examples/monitoring.js';
import { main as quickstart } from '../../examples/quickstart.js';
import { main as rateLimit } from '../../examples/rate-limit.js';
import { main as reactiveSearch } from '../../examples/reactive-search.js';
import { main as saga } from '../../examples/saga.js';
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

  it('gateway: an Idempotency-Key replay creates one order; reuse is 422, a bad body 400', async () => {
    const lines: string[] = [];
    const summary = await gateway((line) => lines.push(line));
    expect(summary).toEqual({ statuses: [200, 200, 422, 400], duplicate: true, ordersCreated: 1 });
    expect(lines.at(-1)).toMatch(/^health: ok, \d+ tools, MCP-Tx: true, 3 calls monitored$/);
  });
});
