/**
 * The reverse of the golden replay: the Python MCP-Tx 0.1.0 server's side of
 * `ts-client-to-python-tx-server.jsonl` (its capabilities, and each `tools/call` answered with the
 * `CallToolResult` it sent, `_meta.mcp_tx` included) played by a real McpServer, to a real mcp-tx
 * client; and the detection of MCP-Tx and of the `dedupe` feature in the capability blocks mcp-tx
 * meets (`experimental.mcp_tx: {}`, a block without a version, features without `dedupe`).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMcpTx,
  type McpTx,
  mcpTxClientCapabilities,
  type TxConfig,
  TxErrorCode,
} from '../../../src/index.js';
import { expectFailure } from '../../support/fixture.js';
import { type CapturedLine, readCapture } from '../../support/pythonCaptures.js';

const PYTHON_SERVER = 'ts-client-to-python-tx-server.jsonl';
const EMPTY_BLOCK_SERVER = 'ts-client-to-server-with-empty-mcp_tx.jsonl';

/** The `experimental` capabilities the capture's server answered `initialize` with. */
function capturedExperimental(capture: readonly CapturedLine[]): Record<string, object> {
  const answer = capture.find(({ dir, message }) => dir === 'server->client' && message.id === 0);
  const experimental = answer?.message.result?.capabilities?.experimental;
  if (experimental === undefined) throw new Error('the capture has no initialize answer');
  return experimental as Record<string, object>;
}

/**
 * What the capture's server answered each `tools/call` with, per tool in the order asked;
 * `undefined` where it did not answer (the client timed out and cancelled it).
 */
function capturedAnswers(capture: readonly CapturedLine[]): Map<string, (CallToolResult | undefined)[]> {
  const answers = new Map<string, (CallToolResult | undefined)[]>();
  for (const { dir, message } of capture) {
    if (dir !== 'client->server' || message.method !== 'tools/call') continue;
    const answer = capture.find((line) => line.dir === 'server->client' && line.message.id === message.id);
    const name = message.params?.name as string;
    answers.set(name, [...(answers.get(name) ?? []), answer?.message.result as CallToolResult | undefined]);
  }
  return answers;
}

/** What the played server saw of one call: its `_meta.mcp_tx`. */
type SeenWire = Record<string, unknown> | undefined;

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/**
 * A real McpServer playing the capture's server: its `experimental` capabilities (or `experimental`),
 * each tool answering its calls with the captured answers in turn; a call the capture left
 * unanswered waits until cancelled. An McpTx with `config` on a client connected to it.
 */
async function playServer(
  name: string,
  config: TxConfig = {},
  experimental: Record<string, object> = capturedExperimental(readCapture(name)),
) {
  const answers = capturedAnswers(readCapture(name));
  const server = new McpServer({ name: 'py-tx', version: '1.29.0' }, { capabilities: { experimental } });
  const seen = new Map<string, SeenWire[]>();
  for (const [tool, queue] of answers) {
    server.registerTool(tool, {}, async (extra) => {
      seen.set(tool, [...(seen.get(tool) ?? []), extra._meta?.mcp_tx as SeenWire]);
      const answer = queue.shift();
      if (answer !== undefined) return answer;
      await new Promise((resolve) => extra.signal.addEventListener('abort', resolve));
      return { content: [], isError: true };
    });
  }
  const client = new Client(
    { name: 'ts-agent', version: '1.0.0' },
    { capabilities: mcpTxClientCapabilities() },
  );
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  await client.connect(clientSide);
  const tx: McpTx = createMcpTx(client, {
    dedupe: false, // as in the capture: each call reaches the server
    retry: { baseDelayMs: 5, jitter: false },
    ...config,
  });
  close = async () => {
    await tx.close({ timeoutMs: 0 });
    await server.close();
  };
  return { tx, seen, captured: capturedAnswers(readCapture(name)) };
}

describe('the Python MCP-Tx server’s answers (ts-client-to-python-tx-server.jsonl), read by mcp-tx', () => {
  it('reads ack, processed, duplicate, attempts and final_status of completed calls; keeps the result as sent', async () => {
    const { tx, captured } = await playServer(PYTHON_SERVER);
    const ids = { idempotencyKey: 'k1', transactionId: 'wf-1', correlationId: 'corr-1' };
    const first = await tx.call('charge', { order: 'ts-1', cents: 500 }, ids);
    expect(first.result).toEqual(captured.get('charge')?.[0]);
    expect(first.result._meta?.mcp_tx).toEqual({
      ack: true,
      processed: true,
      duplicate: false,
      attempts: 1,
      final_status: 'completed',
    });
    expect(first.data).toEqual({ order: 'ts-1', charged: 500 });
    expect(first.meta).toMatchObject({
      ...ids,
      ack: true,
      processed: true,
      duplicate: false,
      attempts: 1,
      status: 'completed',
      serverSupportsTx: true,
    });
    // the same key again: the Python server ran it again, and says so (duplicate: false)
    const again = await tx.call('charge', { order: 'ts-1', cents: 500 }, { idempotencyKey: 'k1' });
    expect(again.meta).toMatchObject({ duplicate: false, processed: true, attempts: 1 });
    const unkeyed = await tx.call('charge', { order: 'ts-2', cents: 100 });
    expect(unkeyed.data).toEqual({ order: 'ts-2', charged: 100 });
    // a plain answer without _meta.mcp_tx: inferred
    const stats = await tx.call('stats', {});
    expect(stats.meta).toMatchObject({ ack: true, processed: true, duplicate: false, status: 'completed' });
  });

  it('reads UNKNOWN_ERROR as a tool error, retryable by its TEMPORARY_FAILURE text, the server code kept', async () => {
    const { tx } = await playServer(PYTHON_SERVER);
    const error = await expectFailure(firstValueFrom(tx.attempt$('flaky', {})));
    expect(error).toMatchObject({
      code: TxErrorCode.ToolError,
      retryable: true,
      ambiguous: false,
      serverErrorCode: 'UNKNOWN_ERROR',
      message: 'TEMPORARY_FAILURE: upstream busy',
    });
    // final_status "failed", ack true, processed false
    expect(error.meta).toMatchObject({
      ack: true,
      processed: false,
      status: 'failed',
      attempts: 1,
      errorCode: TxErrorCode.ToolError,
      errorMessage: 'TEMPORARY_FAILURE: upstream busy',
    });
  });

  it('retries it with the same request_id and reads the second answer (attempts 2, completed)', async () => {
    const { tx, seen } = await playServer(PYTHON_SERVER);
    const result = await tx.call('flaky', {});
    expect(result.result._meta?.mcp_tx).toMatchObject({ attempts: 2, final_status: 'completed' });
    expect(result.meta).toMatchObject({ attempts: 2, status: 'completed', processed: true });
    const [first, second] = seen.get('flaky') ?? [];
    expect(second?.request_id).toBe(first?.request_id);
    expect([first?.retry_count, second?.retry_count]).toEqual([0, 1]);
  });

  it('does not retry a keyed call that timed out: the server speaks MCP-Tx but does not dedupe (it ran twice in the capture)', async () => {
    const { tx, seen } = await playServer(PYTHON_SERVER);
    expect([tx.serverSupportsTx, tx.serverDedupes]).toEqual([true, false]);
    const error = await expectFailure(
      tx.call('slow_charge', { order: 'ts-9' }, { idempotencyKey: 'k9', timeoutMs: 50 }),
    );
    expect(error).toMatchObject({ code: TxErrorCode.Timeout, retryable: false, ambiguous: true });
    expect(error.message).toContain('not retried');
    expect(seen.get('slow_charge')).toHaveLength(1);
  });

  it('retries it when the user vouches for the server (trustServerDedupe), as the capture did', async () => {
    const { tx, seen } = await playServer(PYTHON_SERVER, { trustServerDedupe: true });
    expect(tx.serverDedupes).toBe(true);
    const result = await tx.call('slow_charge', { order: 'ts-9' }, { idempotencyKey: 'k9', timeoutMs: 50 });
    expect(result.meta).toMatchObject({ attempts: 2, status: 'completed' });
    expect(result.result._meta?.mcp_tx).toMatchObject({ attempts: 2, final_status: 'completed' });
    expect(seen.get('slow_charge')?.map((wire) => wire?.idempotency_key)).toEqual(['k9', 'k9']);
  });
});

describe('detecting MCP-Tx and dedupe in a server’s capabilities', () => {
  const keyedTimeout = (tx: McpTx) =>
    tx.call(
      'slow_charge',
      { order: 'ts-9' },
      { idempotencyKey: 'k9', timeoutMs: 50, retry: { maxAttempts: 2 } },
    );

  it('reads experimental.mcp_tx: {} (ts-client-to-server-with-empty-mcp_tx.jsonl) as MCP-Tx 0.1.0 without dedupe', async () => {
    const experimental = capturedExperimental(readCapture(EMPTY_BLOCK_SERVER));
    expect(experimental).toEqual({ mcp_tx: {} });
    const { tx, seen } = await playServer(EMPTY_BLOCK_SERVER);
    expect([tx.serverSupportsTx, tx.serverDedupes]).toEqual([true, false]);
    const result = await tx.call('charge', { order: 'ts-1', cents: 500 }, { idempotencyKey: 'k1' });
    // MCP-Tx metadata is sent (the capture's mcp-tx sent none), the answer without it is inferred
    expect(seen.get('charge')?.[0]).toMatchObject({
      version: '0.1.0',
      idempotency_key: 'k1',
      retry_count: 0,
    });
    expect(result.meta).toMatchObject({ serverSupportsTx: true, ack: true, processed: true });
    await expectFailure(keyedTimeout(tx));
    expect(seen.get('slow_charge')).toHaveLength(1);
  });

  it('takes a block without a version as 0.1.0: features naming dedupe make a keyed retry safe', async () => {
    const experimental = { mcp_tx: { features: ['ack', 'idempotency', 'dedupe'] } };
    const { tx, seen } = await playServer(EMPTY_BLOCK_SERVER, {}, experimental);
    expect([tx.serverSupportsTx, tx.serverDedupes]).toEqual([true, true]);
    await expectFailure(keyedTimeout(tx)); // the capture's server answers no slow_charge at all
    expect(seen.get('slow_charge')).toHaveLength(2);
  });

  it('needs dedupe among the features, or trustServerDedupe: a version and features without it is not enough', async () => {
    const experimental = { mcp_tx: { version: '0.1.0', features: ['ack', 'retry', 'idempotency'] } };
    const plain = await playServer(EMPTY_BLOCK_SERVER, {}, experimental);
    expect([plain.tx.serverSupportsTx, plain.tx.serverDedupes]).toEqual([true, false]);
    await expectFailure(keyedTimeout(plain.tx));
    expect(plain.seen.get('slow_charge')).toHaveLength(1);
    await close?.();
    const trusted = await playServer(EMPTY_BLOCK_SERVER, { trustServerDedupe: true }, experimental);
    expect(trusted.tx.serverDedupes).toBe(true);
    await expectFailure(keyedTimeout(trusted.tx));
    expect(trusted.seen.get('slow_charge')).toHaveLength(2);
  });

  it('does not let trustServerDedupe vouch for a server that does not speak MCP-Tx', async () => {
    const { tx } = await playServer(EMPTY_BLOCK_SERVER, { trustServerDedupe: true }, {});
    expect([tx.serverSupportsTx, tx.serverDedupes]).toEqual([false, false]);
  });
});
