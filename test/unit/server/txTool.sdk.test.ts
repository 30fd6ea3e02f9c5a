import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serverDedupes } from '../../../src/core/wire.js';
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
import { type TxToolRequest, txRequestOf } from '../../../src/server/txRequest.js';
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
    dedupeRequestIds?: boolean;
  } = {},
) {
  const store = options.store ?? memoryIdempotencyStore();
  const charges: string[] = [];
  /** What each run of the handler read of its request's MCP-Tx fields. */
  const requests: (TxToolRequest | undefined)[] = [];
  let calls = 0;
  fixture = await connectFixture({
    serverDedupes: true, // the tool under test, charge, is a txTool
    config: options.config ?? { retry: { baseDelayMs: 1, maxDelayMs: 5, jitter: false }, dedupe: false },
    register: (server) =>
      server.registerTool(
        'charge',
        { inputSchema: { orderId: z.string(), cents: z.number() } },
        txTool(
          async ({ orderId, cents }, extra) => {
            calls += 1;
            requests.push(txRequestOf(extra));
            if (options.failFirst && calls === 1) throw new Error('TEMPORARY_FAILURE: bank busy');
            charges.push(`${orderId}:${cents}`);
            // the effect is done; the answer takes long enough for the client to give up on it
            await new Promise((resolve) => setTimeout(resolve, options.answerAfterMs ?? 0));
            return { content: [{ type: 'text', text: JSON.stringify({ charged: cents }) }] };
          },
          {
            tool: 'charge',
            store,
            inProgress: { waitMs: options.waitMs ?? 2_000, pollMs: 5 },
            ...(options.dedupeRequestIds === undefined ? {} : { dedupeRequestIds: options.dedupeRequestIds }),
          },
        ),
      ),
  });
  return { charges, store, requests };
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

/** A `_meta` as the Python MCP-Tx 0.1.0 client sends it: uuid4 request id, naive UTC timestamp, no key unless given. */
const pythonMeta = (fields: Record<string, unknown>) => ({
  mcp_tx: {
    version: '0.1.0',
    request_id: '2a89d1a9-d727-41f6-a1c6-56a1a1994301',
    expect_ack: true,
    retry_count: 0,
    timeout_ms: 1000,
    timestamp: '2026-12-06T04:53:25.269475',
    ...fields,
  },
});

/** `charge` sent by a bare SDK client with a hand-made `_meta.mcp_tx`, as a Python client would. */
const sendCharge = async (args: { orderId: string; cents: number }, fields: Record<string, unknown>) =>
  (await fixture.client.callTool({
    name: 'charge',
    arguments: args,
    _meta: pythonMeta(fields),
  })) as CallToolResult;

const txMetaOf = (result: CallToolResult) => result._meta?.mcp_tx as Record<string, unknown> | undefined;

describe('txTool on a request id, for a call without an idempotency key', () => {
  it('runs a request id as if it had none while the store is down (a key is never run so)', async () => {
    const memory = memoryIdempotencyStore();
    const down = () => Promise.reject(new TxError(TxErrorCode.StoreUnavailable, 'Redis did not answer'));
    const { charges } = await connectCharging({ store: { ...memory, begin: down } });
    const unkeyed = await sendCharge({ orderId: 'r9', cents: 9 }, { request_id: 'rid-9' });
    expect(charges).toEqual(['r9:9']);
    expect(txMetaOf(unkeyed)).toMatchObject({ processed: true, duplicate: false, final_status: 'completed' });
    const keyed = await sendCharge(
      { orderId: 'r9', cents: 9 },
      { request_id: 'rid-10', idempotency_key: 'k-9' },
    );
    expect(charges).toEqual(['r9:9']);
    expect(txMetaOf(keyed)).toMatchObject({ error_code: TxErrorCode.StoreUnavailable, processed: false });
  });

  it('runs a request id once: a retry with the same request_id is answered from the store, duplicate: true', async () => {
    const { charges } = await connectCharging();
    const first = await sendCharge({ orderId: 'r1', cents: 42 }, { request_id: 'rid-1' });
    const retry = await sendCharge({ orderId: 'r1', cents: 42 }, { request_id: 'rid-1', retry_count: 1 });
    expect(charges).toEqual(['r1:42']);
    expect(txMetaOf(first)).toEqual({
      ack: true,
      processed: true,
      duplicate: false,
      attempts: 1,
      final_status: 'completed',
    });
    expect(txMetaOf(retry)).toEqual({
      ack: true,
      processed: true,
      duplicate: true,
      attempts: 2,
      final_status: 'completed',
    });
    expect(retry.content).toEqual(first.content);
  });

  it('joins a retry that arrives while the first request still runs: one run, the retry a duplicate', async () => {
    const { charges } = await connectCharging({ answerAfterMs: 50 });
    const first = sendCharge({ orderId: 'r2', cents: 7 }, { request_id: 'rid-2' });
    await until(() => charges.length === 1); // the first is running (Python sends no cancel)
    const retry = sendCharge({ orderId: 'r2', cents: 7 }, { request_id: 'rid-2', retry_count: 1 });
    const answers = await Promise.all([first, retry]);
    expect(charges).toEqual(['r2:7']);
    expect(answers.map((answer) => txMetaOf(answer)?.duplicate)).toEqual([false, true]);
    expect(answers.map((answer) => txMetaOf(answer)?.attempts)).toEqual([1, 2]);
    expect(answers[1]?.content).toEqual(answers[0]?.content);
  });

  it('answers the same request id with other arguments MCP_TX_IDEMPOTENCY_CONFLICT, without running it', async () => {
    const { charges } = await connectCharging();
    await sendCharge({ orderId: 'r3', cents: 100 }, { request_id: 'rid-3' });
    const other = await sendCharge({ orderId: 'r3', cents: 999 }, { request_id: 'rid-3', retry_count: 1 });
    expect(charges).toEqual(['r3:100']);
    expect(other.isError).toBe(true);
    expect(txMetaOf(other)).toMatchObject({
      processed: false,
      duplicate: false,
      final_status: 'failed',
      error_code: TxErrorCode.IdempotencyConflict,
      error_message: 'Request id "rid-3" was already used for charge with other arguments',
    });
  });

  it('lets an idempotency key win over the request id, and keeps request ids apart from keys', async () => {
    const memory = memoryIdempotencyStore();
    const keys: string[] = [];
    const store: IdempotencyStore = {
      begin: (key, ...rest) => {
        keys.push(key);
        return memory.begin(key, ...rest);
      },
      complete: (...args) => memory.complete(...args),
      release: (...args) => memory.release(...args),
    };
    const { charges } = await connectCharging({ store });
    // one request id, two keys: two calls (the key spans request ids, not the other way round)
    await sendCharge({ orderId: 'r4', cents: 1 }, { request_id: 'rid-4', idempotency_key: 'k-a' });
    await sendCharge({ orderId: 'r4', cents: 2 }, { request_id: 'rid-4', idempotency_key: 'k-b' });
    // a key again under a new request id: a duplicate
    const again = await sendCharge(
      { orderId: 'r4', cents: 1 },
      { request_id: 'rid-5', idempotency_key: 'k-a' },
    );
    // a request id with the text of a key, other arguments: its own call, no conflict
    const lookalike = await sendCharge({ orderId: 'r4', cents: 3 }, { request_id: 'k-a' });
    expect(charges).toEqual(['r4:1', 'r4:2', 'r4:3']);
    expect(txMetaOf(again)?.duplicate).toBe(true);
    expect(txMetaOf(lookalike)).toMatchObject({ duplicate: false, final_status: 'completed' });
    expect(keys).toEqual([
      'server charge:k-a',
      'server charge:k-b',
      'server charge:k-a',
      'server-request charge:k-a',
    ]);
  });

  it('runs a request id again after its handler failed, as for a key', async () => {
    const { charges } = await connectCharging({ failFirst: true });
    const failed = await sendCharge({ orderId: 'r6', cents: 5 }, { request_id: 'rid-6' });
    expect(failed.isError).toBe(true);
    expect(txMetaOf(failed)).toMatchObject({ error_code: TxErrorCode.ToolError, final_status: 'failed' });
    const retry = await sendCharge({ orderId: 'r6', cents: 5 }, { request_id: 'rid-6', retry_count: 1 });
    expect(txMetaOf(retry)).toMatchObject({ duplicate: false, attempts: 2, final_status: 'completed' });
    expect(charges).toEqual(['r6:5']);
  });

  it('runs mcp-tx’s own unkeyed call once when its attempts time out and are retried', async () => {
    const { charges } = await connectCharging({ answerAfterMs: 60 });
    const result = await fixture.tx.call(
      'charge',
      { orderId: 'r7', cents: 9 },
      { timeoutMs: 20, retry: { maxAttempts: 20, baseDelayMs: 5, jitter: false, retryAmbiguous: true } },
    );
    expect(charges).toEqual(['r7:9']);
    expect(result.meta.attempts).toBeGreaterThanOrEqual(2);
    expect(result.meta.duplicate).toBe(true);
    expect(result.data).toEqual({ charged: 9 });
  });

  it('runs every request without a key with dedupeRequestIds: false', async () => {
    const { charges } = await connectCharging({ dedupeRequestIds: false });
    await sendCharge({ orderId: 'r8', cents: 1 }, { request_id: 'rid-8' });
    const retry = await sendCharge({ orderId: 'r8', cents: 1 }, { request_id: 'rid-8', retry_count: 1 });
    expect(charges).toEqual(['r8:1', 'r8:1']);
    expect(txMetaOf(retry)).toMatchObject({ duplicate: false, attempts: 2 });
  });

  it('runs a request without request id or key every time', async () => {
    const { charges } = await connectCharging();
    await sendCharge({ orderId: 'r9', cents: 1 }, { request_id: undefined });
    const again = await sendCharge({ orderId: 'r9', cents: 1 }, { request_id: '' });
    expect(charges).toEqual(['r9:1', 'r9:1']);
    expect(txMetaOf(again)).toMatchObject({ duplicate: false, final_status: 'completed' });
  });

  it('hands the handler the request’s MCP-Tx fields, a naive timestamp read as UTC', async () => {
    const { requests } = await connectCharging();
    await sendCharge({ orderId: 'r10', cents: 1 }, { request_id: 'rid-10', transaction_id: 'wf-1' });
    await fixture.client.callTool({ name: 'charge', arguments: { orderId: 'r11', cents: 1 } });
    expect(requests).toEqual([
      {
        requestId: 'rid-10',
        transactionId: 'wf-1',
        retryCount: 0,
        timeoutMs: 1000,
        timestamp: '2026-12-06T04:53:25.269475',
        sentAtMs: Date.parse('2026-12-06T04:53:25.269Z'),
      },
      undefined, // a plain MCP client
    ]);
  });

  it('advertises the dedupe feature, which the client reads with serverDedupes', async () => {
    await connectCharging();
    expect(serverDedupes(fixture.client.getServerCapabilities())).toBe(true);
  });
});
