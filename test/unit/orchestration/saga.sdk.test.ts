import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CircuitBreaker,
  createMcpTx,
  type EventStore,
  type McpTx,
  MemoryEventStore,
  mcpTxClientCapabilities,
  perRequestSignalFetch,
  Saga,
  type ToolPolicy,
  type TxConfig,
  TxErrorCode,
} from '../../../src/index.js';
import { type HttpServer, startHttpServer } from '../../support/httpServer.js';
import { orderSteps } from '../../support/orderSaga.js';
import { connectOrderShop, type OrderShop, watchedEventStore } from '../../support/orderShop.js';

describe('Saga', () => {
  let server: HttpServer;
  let tx: McpTx;
  let dir: string;
  beforeEach(async () => {
    server = await startHttpServer({ stateless: false });
    const client = new Client(
      { name: 'saga-test', version: '1.0.0' },
      { capabilities: mcpTxClientCapabilities() },
    );
    await client.connect(new StreamableHTTPClientTransport(server.url, { fetch: perRequestSignalFetch() }));
    tx = createMcpTx(client, { retry: { baseDelayMs: 2, maxDelayMs: 10 } });
    dir = await mkdtemp(join(tmpdir(), 'mcp-tx-saga-'));
  });
  afterEach(async () => {
    await tx.close({ timeoutMs: 1_000 });
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs every step once and logs each transition', async () => {
    const events = new MemoryEventStore();
    const result = await new Saga(tx, events, orderSteps('o-ok')).run('saga-ok');
    expect(result).toMatchObject({ status: 'completed', completedSteps: ['reserve', 'payment', 'shipping'] });
    expect(server.state.effects).toEqual({ 'reserve:o-ok': 1, 'pay:o-ok': 1, 'ship:o-ok': 1 });
    const log = await lastValueFrom(events.read$({ transactionId: 'saga-ok' }).pipe(toArray()));
    expect(log.map((event) => event.type)).toEqual([
      'SagaStarted',
      'SagaStepCompleted',
      'SagaStepCompleted',
      'SagaStepCompleted',
      'SagaEnded',
    ]);
  });

  it('compensates the completed steps in reverse order when a step fails', async () => {
    const result = await new Saga(tx, new MemoryEventStore(), orderSteps('o-2', 'shipping')).run('saga-fail');
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'shipping',
      error: { code: TxErrorCode.ToolError },
      completedSteps: ['reserve', 'payment'],
      compensatedSteps: ['payment', 'reserve'],
      compensationFailures: [],
    });
    expect(server.state.effects).toMatchObject({ 'refund:o-2': 1, 'release:o-2': 1 });
  });

  it('reports a compensation that still fails after its retries, and undoes the others', async () => {
    const steps = orderSteps('o-3', 'shipping');
    const broken = steps.map((step) =>
      step.name === 'payment' && step.compensation
        ? { ...step, compensation: { tool: 'refund', args: () => ({ order: 'o-3', fail: true }) } }
        : step,
    );
    const result = await new Saga(tx, new MemoryEventStore(), broken, {
      compensationRetry: { maxAttempts: 2 },
    }).run();
    expect(result.status).toBe('failed');
    expect(result.compensatedSteps).toEqual(['reserve']);
    expect(result.compensationFailures).toEqual([
      { step: 'payment', code: TxErrorCode.ToolError, message: 'refund refused order o-3' },
    ]);
  });

  it('refuses to start a saga id twice or to resume one that never started', async () => {
    const saga = new Saga(tx, new MemoryEventStore(), orderSteps('o-4'));
    await saga.run('twice');
    await expect(saga.run('twice')).rejects.toMatchObject({ code: TxErrorCode.Validation, field: 'sagaId' });
    await expect(saga.resume('never')).rejects.toMatchObject({ code: TxErrorCode.Validation });
    expect(
      () => new Saga(tx, new MemoryEventStore(), orderSteps('o-4'), { settleRetry: { maxAttempts: 0 } }),
    ).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.settleRetry.maxAttempts' }),
    );
  });
});

const eventTypes = async (events: EventStore, sagaId: string) =>
  (await lastValueFrom(events.read$({ transactionId: sagaId }).pipe(toArray()))).map((event) => event.type);

const endings = async (events: EventStore, sagaId: string) =>
  (await lastValueFrom(events.read$({ transactionId: sagaId, type: 'SagaEnded' }).pipe(toArray()))).map(
    (event) => event.data?.status,
  );

describe('Saga when a step’s call ends without saying whether it ran', () => {
  // `pay` charges at once and answers only when released: its first attempt times out, the retry
  // finds the key in progress (MCP_TX_IN_PROGRESS) — the payment may or may not have been made.
  const holding = (pay: ToolPolicy = {}): TxConfig => ({
    retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5, jitter: false },
    tools: { pay: { timeoutMs: 20, ...pay } },
  });
  let shop: OrderShop;
  afterEach(async () => {
    shop.releasePay();
    await shop.fixture.close();
  });

  it('calls it again with its key and, when it ran, compensates it with the others', async () => {
    shop = await connectOrderShop({ config: holding(), holdPay: true });
    const events = watchedEventStore((event) => {
      if (event.type === 'SagaStepFailed') shop.releasePay(); // the payment answers while the saga settles it
    });
    const result = await new Saga(shop.fixture.tx, events, orderSteps('o-5'), {
      settleRetry: { maxAttempts: 20 },
    }).run('saga-late');
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'payment',
      error: { code: TxErrorCode.InProgress },
      completedSteps: ['reserve', 'payment'],
      compensatedSteps: ['payment', 'reserve'],
      compensationFailures: [],
    });
    expect(shop.effects).toEqual({ 'reserve:o-5': 1, 'pay:o-5': 1, 'refund:o-5': 1, 'release:o-5': 1 });
    expect(shop.runs.pay).toBe(1);
    expect(await eventTypes(events, 'saga-late')).toEqual([
      'SagaStarted',
      'SagaStepCompleted',
      'SagaStepFailed',
      'SagaStepCompleted',
      'SagaCompensated',
      'SagaCompensated',
      'SagaEnded',
    ]);
  });

  it('takes it as not done when the repeated call is refused', async () => {
    shop = await connectOrderShop({ config: holding(), holdPay: true });
    const events = watchedEventStore((event) => {
      if (event.type === 'SagaStepFailed') shop.releasePay();
    });
    const result = await new Saga(shop.fixture.tx, events, orderSteps('o-7', 'payment'), {
      settleRetry: { maxAttempts: 20 },
    }).run('saga-refused');
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'payment',
      error: { code: TxErrorCode.ToolError, message: 'pay refused order o-7' },
      completedSteps: ['reserve'],
      compensatedSteps: ['reserve'],
    });
    expect(shop.effects).toEqual({ 'reserve:o-7': 1, 'release:o-7': 1 });
  });

  it('ends unsettled, not compensated, when it cannot tell; resume() settles it later and refunds', async () => {
    shop = await connectOrderShop({ config: holding(), holdPay: true });
    const events = new MemoryEventStore();
    const steps = orderSteps('o-6');
    const result = await new Saga(shop.fixture.tx, events, steps, { settleRetry: { maxAttempts: 2 } }).run(
      'saga-unknown',
    );
    expect(result).toMatchObject({
      status: 'unsettled',
      failedStep: 'payment',
      error: { code: TxErrorCode.InProgress },
      completedSteps: ['reserve'],
      compensatedSteps: ['reserve'],
      compensationFailures: [],
    });
    expect(shop.effects).toEqual({ 'reserve:o-6': 1, 'pay:o-6': 1, 'release:o-6': 1 });

    shop.releasePay();
    const resumed = await new Saga(shop.fixture.tx, events, steps, {
      settleRetry: { maxAttempts: 20 },
    }).resume('saga-unknown');
    expect(resumed).toMatchObject({
      status: 'compensated',
      completedSteps: ['reserve', 'payment'],
      compensatedSteps: ['payment', 'reserve'],
    });
    expect(shop.effects).toEqual({ 'reserve:o-6': 1, 'pay:o-6': 1, 'refund:o-6': 1, 'release:o-6': 1 });
    expect(shop.runs).toEqual({ reserve: 1, pay: 1, refund: 1, release: 1 });
    expect(await endings(events, 'saga-unknown')).toEqual(['unsettled', 'compensated']);
  });

  it('does not call it again on a server that does not dedupe keys', async () => {
    shop = await connectOrderShop({ config: holding(), holdPay: true, serverTx: false });
    const result = await new Saga(shop.fixture.tx, new MemoryEventStore(), orderSteps('o-9')).run();
    expect(result).toMatchObject({
      status: 'unsettled',
      failedStep: 'payment',
      error: { code: TxErrorCode.Timeout },
      compensatedSteps: ['reserve'],
    });
    expect(shop.runs).toEqual({ reserve: 1, pay: 1, release: 1 });
  });

  it('counts a refusal by an open circuit after a timed-out attempt as unknown', async () => {
    shop = await connectOrderShop({
      config: holding({ breaker: new CircuitBreaker({ failureThreshold: 1 }) }),
      holdPay: true,
    });
    const result = await new Saga(shop.fixture.tx, new MemoryEventStore(), orderSteps('o-10')).run();
    expect(result).toMatchObject({
      status: 'unsettled',
      failedStep: 'payment',
      error: { code: TxErrorCode.CircuitOpen },
      completedSteps: ['reserve'],
      compensatedSteps: ['reserve'],
      compensationFailures: [],
    });
    expect(shop.runs.pay).toBe(1);
    expect(shop.effects['refund:o-10']).toBeUndefined();
  });
});

describe('Saga when the event store fails to append', () => {
  let shop: OrderShop;
  afterEach(async () => {
    await shop.fixture.close();
  });

  it.each([
    {
      entry: 'SagaStepCompleted',
      failAt: undefined,
      status: 'completed',
      effects: ['reserve', 'pay', 'ship'],
      ran: ['reserve', 'pay', 'ship'],
    },
    {
      entry: 'SagaCompensated',
      failAt: 'shipping',
      status: 'compensated',
      effects: ['reserve', 'pay', 'refund', 'release'],
      ran: ['reserve', 'pay', 'ship', 'refund', 'release'],
    },
  ])(
    'rejects when the payment’s $entry cannot be logged; resume() ends $status, running nothing twice',
    async ({ entry, failAt, status, effects, ran }) => {
      // no client-side dedupe: as from another process, the server's txTool answers the repeats
      shop = await connectOrderShop({ config: { retry: { baseDelayMs: 1, maxDelayMs: 5 }, dedupe: false } });
      let diskFull = true;
      const events = watchedEventStore((event) => {
        if (diskFull && event.type === entry && event.data?.step === 'payment') {
          diskFull = false;
          throw new Error('ENOSPC: no space left on device');
        }
      });
      const saga = new Saga(shop.fixture.tx, events, orderSteps('o-8', failAt));
      await expect(saga.run('saga-disk')).rejects.toThrow('ENOSPC');
      expect(await endings(events, 'saga-disk')).toEqual([]);

      const result = await saga.resume('saga-disk');
      expect(result.status).toBe(status);
      expect(shop.effects).toEqual(Object.fromEntries(effects.map((tool) => [`${tool}:o-8`, 1])));
      expect(shop.runs).toEqual(Object.fromEntries(ran.map((tool) => [tool, 1])));
    },
  );
});
