import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createMcpTx,
  type IdempotencyStore,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  type TxConfig,
  TxError,
  TxErrorCode,
  txTool,
} from '../../../src/index.js';
import { connectFixture, expectFailure, type Fixture, until } from '../../support/fixture.js';
import { keepConnected } from '../../support/reconnect.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

/** A server whose `charge` tool is wrapped in txTool; `charges` counts its side effects. */
async function connectCharging(
  options: {
    answerAfterMs?: number;
    failFirst?: boolean;
    waitMs?: number;
    store?: IdempotencyStore;
    config?: TxConfig;
  } = {},
) {
  const store = options.store ?? memoryIdempotencyStore();
  const charges: string[] = [];
  let calls = 0;
  fixture = await connectFixture({
    config: options.config ?? { retry: { baseDelayMs: 1, maxDelayMs: 5, jitter: false }, dedupe: false },
    register: (server) =>
      server.registerTool(
        'charge',
        { inputSchema: { orderId: z.string(), cents: z.number() } },
        txTool(
          async ({ orderId, cents }) => {
            calls += 1;
            if (options.failFirst && calls === 1) throw new Error('TEMPORARY_FAILURE: bank busy');
            charges.push(`${orderId}:${cents}`);
            // the effect is done; the answer takes long enough for the client to give up on it
            await new Promise((resolve) => setTimeout(resolve, options.answerAfterMs ?? 0));
            return { content: [{ type: 'text', text: JSON.stringify({ charged: cents }) }] };
          },
          { tool: 'charge', store, inProgress: { waitMs: options.waitMs ?? 2_000, pollMs: 5 } },
        ),
      ),
  });
  return { charges, store };
}

describe('txTool', () => {
  it('answers the result when the store cannot keep it, and a retry does not run the handler again', async () => {
    const memory = memoryIdempotencyStore();
    let failures = 1;
    const flaky: IdempotencyStore = {
      begin: (...args) => memory.begin(...args),
      release: (...args) => memory.release(...args),
      complete: async (...args) => {
        if (failures-- > 0)
          throw new TxError(TxErrorCode.StoreUnavailable, 'store down', { retryable: true });
        return memory.complete(...args);
      },
    };
    const { charges } = await connectCharging({ store: flaky, waitMs: 0 });
    const first = await fixture.tx.call('charge', { orderId: 'o9', cents: 500 }, { idempotencyKey: 'o9' });
    expect(first.meta).toMatchObject({ status: 'completed', duplicate: false, attempts: 1 });
    const again = await expectFailure(
      fixture.tx.call('charge', { orderId: 'o9', cents: 500 }, { idempotencyKey: 'o9', retry: false }),
    );
    expect(again.code).toBe(TxErrorCode.InProgress); // the hold stays until it expires: no second charge
    expect(charges).toEqual(['o9:500']);
  });

  it('shares one store with the client’s dedupe without either taking the other’s keys', async () => {
    const store = memoryIdempotencyStore();
    const { charges } = await connectCharging({ store, config: { dedupe: { store } } });
    const first = await fixture.tx.call('charge', { orderId: 'o8', cents: 5 }, { idempotencyKey: 'o8' });
    const again = await fixture.tx.call('charge', { orderId: 'o8', cents: 5 }, { idempotencyKey: 'o8' });
    expect([first.meta.duplicate, again.meta.duplicate]).toEqual([false, true]);
    expect(charges).toEqual(['o8:5']);
  });

  it('answers with _meta.mcp_tx and runs a keyed call once; the repeat is a duplicate', async () => {
    const { charges } = await connectCharging();
    const first = await fixture.tx.call('charge', { orderId: 'o1', cents: 500 }, { idempotencyKey: 'o1' });
    const again = await fixture.tx.call('charge', { orderId: 'o1', cents: 500 }, { idempotencyKey: 'o1' });
    expect(charges).toEqual(['o1:500']);
    expect(first.result._meta?.mcp_tx).toEqual({
      ack: true,
      processed: true,
      duplicate: false,
      attempts: 1,
      final_status: 'completed',
    });
    expect(first.meta).toMatchObject({ ack: true, processed: true, duplicate: false });
    expect(again.meta.duplicate).toBe(true);
    expect(again.data).toEqual({ charged: 500 });
  });

  it('makes the effect exactly-once when the response is lost and the client retries with the key', async () => {
    const { charges } = await connectCharging({ answerAfterMs: 60 });
    const result = await fixture.tx.call(
      'charge',
      { orderId: 'o2', cents: 100 },
      { idempotencyKey: 'o2', timeoutMs: 20, retry: { maxAttempts: 10 } },
    );
    expect(charges).toEqual(['o2:100']);
    expect(result.meta.attempts).toBeGreaterThanOrEqual(2);
    expect(result.meta.duplicate).toBe(true);
    expect(result.data).toEqual({ charged: 100 });
  });

  it('lets a concurrent request with the same key wait for the first, then answers it as a duplicate', async () => {
    const { charges } = await connectCharging({ answerAfterMs: 30 });
    const call = () => fixture.tx.call('charge', { orderId: 'o7', cents: 7 }, { idempotencyKey: 'o7' });
    const results = await Promise.all([call(), call()]);
    expect(charges).toEqual(['o7:7']);
    expect(results.map((result) => result.meta.duplicate).sort()).toEqual([false, true]);
  });

  it('answers MCP_TX_IN_PROGRESS (retryable) when the first request takes longer than the wait', async () => {
    const { charges } = await connectCharging({ answerAfterMs: 100, waitMs: 10 });
    const call = () =>
      fixture.tx.call('charge', { orderId: 'o8', cents: 8 }, { idempotencyKey: 'o8', retry: false });
    const [first, second] = await Promise.allSettled([call(), call()]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({
      status: 'rejected',
      reason: { code: TxErrorCode.InProgress, retryable: true },
    });
    expect(charges).toEqual(['o8:8']);
  });

  it('answers a reused key with other arguments with MCP_TX_IDEMPOTENCY_CONFLICT, not retried', async () => {
    const { charges } = await connectCharging();
    await fixture.tx.call('charge', { orderId: 'o3', cents: 100 }, { idempotencyKey: 'o3' });
    const error = await expectFailure(
      fixture.tx.call('charge', { orderId: 'o3', cents: 999 }, { idempotencyKey: 'o3' }),
    );
    expect(error).toMatchObject({ code: TxErrorCode.IdempotencyConflict, retryable: false });
    expect(error.meta?.attempts).toBe(1);
    expect(charges).toEqual(['o3:100']);
  });

  it('releases the key when the handler throws, so the retry runs it', async () => {
    const { charges } = await connectCharging({ failFirst: true });
    const result = await fixture.tx.call('charge', { orderId: 'o4', cents: 1 }, { idempotencyKey: 'o4' });
    expect(result.meta).toMatchObject({ attempts: 2, duplicate: false });
    expect(charges).toEqual(['o4:1']);
  });

  it('runs calls without a key every time, still acknowledging them', async () => {
    const { charges } = await connectCharging();
    await fixture.tx.call('charge', { orderId: 'o5', cents: 1 });
    const second = await fixture.tx.call('charge', { orderId: 'o5', cents: 1 });
    expect(charges).toEqual(['o5:1', 'o5:1']);
    expect(second.result._meta?.mcp_tx).toMatchObject({
      ack: true,
      duplicate: false,
      final_status: 'completed',
    });
  });

  it('answers a plain MCP client (no _meta.mcp_tx) without MCP-Tx metadata', async () => {
    const { charges } = await connectCharging();
    const result = await fixture.client.callTool({ name: 'charge', arguments: { orderId: 'o6', cents: 2 } });
    expect(result._meta?.mcp_tx).toBeUndefined();
    expect(charges).toEqual(['o6:2']);
  });

  it('rejects bad options, naming the field', () => {
    const handler = async () => ({ content: [] });
    expect(() => txTool(handler, { tool: 'x', store: {} as never })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.store' }),
    );
    expect(() => txTool(handler, { tool: '', store: memoryIdempotencyStore() })).toThrowError(
      expect.objectContaining({ field: 'options.tool' }),
    );
  });
});

describe('txTool when the connection drops after the tool ran', () => {
  it('answers the retry on the new connection with the stored result: one effect, duplicate: true', async () => {
    const store = memoryIdempotencyStore();
    const effects: string[] = [];
    let release: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => {
      release = resolve;
    });
    const servers: McpServer[] = [];
    const serverSides: InMemoryTransport[] = [];
    const newServer = () => {
      const server = new McpServer(
        { name: 'drop', version: '1.0.0' },
        { capabilities: mcpTxServerCapabilities() },
      );
      server.registerTool(
        'ship',
        { inputSchema: { parcel: z.string() } },
        txTool(
          async ({ parcel }) => {
            effects.push(parcel);
            await answered; // the effect is done; the connection drops before the answer
            return { content: [{ type: 'text', text: `shipped ${parcel}` }] };
          },
          { tool: 'ship', store, inProgress: { waitMs: 2_000, pollMs: 5 } },
        ),
      );
      servers.push(server);
      return server;
    };
    const client = new Client({ name: 'c', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
    const connection = await keepConnected(client, async () => {
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      serverSides.push(serverSide);
      await newServer().connect(serverSide);
      return clientSide;
    });
    const tx = createMcpTx(client, {
      retry: { baseDelayMs: 5, maxDelayMs: 20, jitter: false },
      dedupe: false,
    });
    const shipping = tx.call('ship', { parcel: 'p1' }, { idempotencyKey: 'p1' });
    await until(() => effects.length === 1);
    await serverSides[0]?.close();
    release();
    const result = await shipping;
    expect(effects).toEqual(['p1']);
    expect(result.meta).toMatchObject({ duplicate: true, status: 'completed' });
    expect(result.data).toBe('shipped p1');
    expect(connection.connections).toBe(2);
    connection.stop();
    await tx.close();
    await Promise.all(servers.map((server) => server.close()));
  });
});
