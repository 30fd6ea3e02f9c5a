import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createMcpTx,
  JsonlEventStore,
  type McpTx,
  MemoryEventStore,
  mcpTxClientCapabilities,
  perRequestSignalFetch,
  Saga,
  TxErrorCode,
} from '../../src/index.js';
import { type HttpServer, startHttpServer } from '../support/httpServer.js';
import { orderSteps } from '../support/orderSaga.js';

const run = promisify(execFile);
const sagaClient = fileURLToPath(new URL('../support/sagaClient.ts', import.meta.url));

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

describe('Saga', () => {
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

  it('is finished by resume() in another process after a crash, without running a step twice', async () => {
    const env = {
      ...process.env,
      MCP_URL: server.url.href,
      EVENTS_PATH: join(dir, 'sagas.jsonl'),
      SAGA_ID: 'saga-crash',
    };
    const crashed = await run(process.execPath, ['--import', 'tsx', sagaClient], {
      env: { ...env, CRASH_BEFORE_LOGGING: 'payment' },
    }).catch((error: { signal?: string }) => error);
    expect((crashed as { signal?: string }).signal).toBe('SIGKILL');
    expect(server.state.effects).toEqual({ 'reserve:o-1': 1, 'pay:o-1': 1 });

    const { stdout } = await run(process.execPath, ['--import', 'tsx', sagaClient], {
      env: { ...env, RESUME: '1' },
    });
    expect(JSON.parse(stdout)).toMatchObject({ sagaId: 'saga-crash', status: 'completed' });
    expect(server.state.effects).toEqual({ 'reserve:o-1': 1, 'pay:o-1': 1, 'ship:o-1': 1 });
    const log = await lastValueFrom(new JsonlEventStore(env.EVENTS_PATH).read$().pipe(toArray()));
    expect(log.at(-1)).toMatchObject({ type: 'SagaEnded', data: { status: 'completed' } });
  }, 30_000);

  it('refuses to start a saga id twice or to resume one that never started', async () => {
    const saga = new Saga(tx, new MemoryEventStore(), orderSteps('o-4'));
    await saga.run('twice');
    await expect(saga.run('twice')).rejects.toMatchObject({ code: TxErrorCode.Validation, field: 'sagaId' });
    await expect(saga.resume('never')).rejects.toMatchObject({ code: TxErrorCode.Validation });
  });
});
