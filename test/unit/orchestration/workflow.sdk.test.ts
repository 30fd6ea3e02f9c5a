import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  memoryIdempotencyStore,
  runWorkflow,
  TxErrorCode,
  txTool,
  type WorkflowStep,
  workflow$,
} from '../../../src/index.js';
import { connectFixture, type Fixture } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

/** A data pipeline server: extract → transform → load, each a txTool with a side-effect counter. */
async function connectPipeline() {
  const store = memoryIdempotencyStore();
  const runs: Record<string, number> = {};
  const step = (name: string, body: (args: { rows: number[] }) => number[]) =>
    txTool<{ rows: number[] }, object>(
      async (args) => {
        runs[name] = (runs[name] ?? 0) + 1;
        return { content: [{ type: 'text', text: JSON.stringify(body(args)) }] };
      },
      { tool: name, store },
    );
  fixture = await connectFixture({
    config: { dedupe: false, retry: { baseDelayMs: 1, maxDelayMs: 2, jitter: false } },
    register: (server) => {
      const shape = { inputSchema: { rows: z.array(z.number()) } };
      server.registerTool(
        'extract',
        shape,
        step('extract', () => [1, 2, 3]),
      );
      server.registerTool(
        'transform',
        shape,
        step('transform', ({ rows }) => rows.map((row) => row * 10)),
      );
      server.registerTool(
        'load',
        shape,
        step('load', ({ rows }) => [rows.length]),
      );
    },
  });
  return { runs };
}

const steps = [
  { name: 'extract', tool: 'extract', args: { rows: [] } },
  {
    name: 'transform',
    tool: 'transform',
    args: (previous: { data: unknown } | undefined) => ({ rows: previous?.data as number[] }),
  },
  {
    name: 'load',
    tool: 'load',
    args: (previous: { data: unknown } | undefined) => ({ rows: previous?.data as number[] }),
  },
];

/** The `_meta.mcp_tx` of each `tools/call` the server received, in order. */
function sentWireMeta(): Record<string, unknown>[] {
  return fixture.received
    .filter((message) => 'method' in message && message.method === 'tools/call')
    .map(
      (message) =>
        (message as unknown as { params: { _meta: { mcp_tx: Record<string, unknown> } } }).params._meta
          .mcp_tx,
    );
}

describe('workflows', () => {
  it('runs the steps in order as one transaction, each step using the one before', async () => {
    await connectPipeline();
    const states = await lastValueFrom(workflow$(fixture.tx, { id: 'etl-1', steps }).pipe(toArray()));
    expect(states.map((state) => state.status)).toEqual(['running', 'running', 'running', 'completed']);
    const final = states.at(-1);
    expect(final?.steps.map((step) => step.data)).toEqual([[1, 2, 3], [10, 20, 30], [3]]);
    expect(final?.totalAttempts).toBe(3);
    const wires = sentWireMeta();
    expect(wires.map((wire) => wire.transaction_id)).toEqual(['etl-1', 'etl-1', 'etl-1']);
    expect(wires.map((wire) => wire.idempotency_key)).toEqual([
      'etl-1:extract',
      'etl-1:transform',
      'etl-1:load',
    ]);
  });

  it('keys a step <id>:<step> unless its options give a key (an undefined one included)', async () => {
    await connectPipeline();
    const keyed: WorkflowStep[] = [
      { ...(steps[0] as WorkflowStep), options: { idempotencyKey: undefined, timeoutMs: 5_000 } },
      { ...(steps[1] as WorkflowStep), options: { idempotencyKey: 'my-transform' } },
    ];
    await runWorkflow(fixture.tx, { id: 'etl-keys', steps: keyed });
    expect(sentWireMeta().map((wire) => wire.idempotency_key)).toEqual(['etl-keys:extract', 'my-transform']);
  });

  it('does not repeat finished steps when the same workflow id runs again (after a crash)', async () => {
    const { runs } = await connectPipeline();
    await runWorkflow(fixture.tx, { id: 'etl-2', steps });
    const again = await runWorkflow(fixture.tx, { id: 'etl-2', steps });
    expect(again.status).toBe('completed');
    expect(again.steps.map((step) => step.duplicate)).toEqual([true, true, true]);
    expect(runs).toEqual({ extract: 1, transform: 1, load: 1 });
  });

  it('stops at the first failed step and says which and why', async () => {
    await connectPipeline();
    const failing = [
      steps[0],
      { name: 'explode', tool: 'boom', args: { message: 'bad rows' } },
      steps[2],
    ] as typeof steps;
    const state = await runWorkflow(fixture.tx, { id: 'etl-3', steps: failing });
    expect(state.status).toBe('failed');
    expect(state.steps.map((step) => `${step.name}:${step.status}`)).toEqual([
      'extract:completed',
      'explode:failed',
    ]);
    expect(state.steps[1]).toMatchObject({
      errorCode: TxErrorCode.ToolError,
      errorMessage: 'bad rows',
      attempts: 1,
    });
    expect(state.error?.code).toBe(TxErrorCode.ToolError);
  });
});

describe('a workflow definition that cannot run', () => {
  it('is refused with MCP_TX_VALIDATION naming the field, on subscription, nothing called', async () => {
    await connectPipeline();
    const bad: Array<[unknown, string]> = [
      [null, 'workflow'],
      ['etl', 'workflow'],
      [{ id: 'etl-0' }, 'workflow.steps'],
      [{ id: 'etl-0', steps: [] }, 'workflow.steps'], // a workflow of nothing would report `completed`
      [{ steps: [steps[0], { ...steps[0], args: { rows: [9] } }] }, 'workflow.steps'], // same name twice
      [{ steps: [null] }, 'workflow.steps.0'],
      [{ steps: [{ name: '', tool: 'extract' }] }, 'workflow.steps.0.name'],
      [{ steps: [{ name: 'x', tool: 'extract', args: 'rows' }] }, 'workflow.steps.0.args'],
      [{ id: 42, steps }, 'workflow.id'],
      [{ steps, retries: 3 }, 'workflow.retries'],
    ];
    for (const [definition, field] of bad) {
      // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
      const states = workflow$(fixture.tx, definition as any); // does not throw: errors on subscription
      await expect(lastValueFrom(states)).rejects.toMatchObject({ code: TxErrorCode.Validation, field });
      // biome-ignore lint/suspicious/noExplicitAny: as above
      await expect(runWorkflow(fixture.tx, definition as any)).rejects.toMatchObject({ field });
    }
    // biome-ignore lint/suspicious/noExplicitAny: as above
    await expect(runWorkflow(null as any, { steps })).rejects.toMatchObject({ field: 'tx' });
    expect(sentWireMeta()).toEqual([]);
  });
});
