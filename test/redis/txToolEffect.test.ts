import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createMcpTx,
  type IdempotencyStore,
  type McpTx,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  memoryIdempotencyStore,
  TxErrorCode,
  txTool,
  withEffect,
} from '../../src/index.js';
import { redisIdempotencyStore } from '../../src/redis.js';
import { expectFailure } from '../support/fixture.js';
import { testRedis } from '../support/redis.js';

const { redis, prefix } = testRedis();
let open: McpTx | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

/**
 * A `credit` tool answering withEffect, over InMemory; `runs` lists handler executions, and the
 * n-th execution works `workMs(n)` ms before answering.
 */
async function creditServer(store: IdempotencyStore, inProgressTtlMs = 5_000, workMs = (_run: number) => 0) {
  const server = new McpServer(
    { name: 'credit', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  const runs: string[] = [];
  server.registerTool(
    'credit',
    { inputSchema: { account: z.string() } },
    txTool(
      async ({ account }) => {
        runs.push(account);
        await new Promise((resolve) => setTimeout(resolve, workMs(runs.length)));
        return withEffect({ content: [{ type: 'text', text: 'ok' }] }, [
          ['HINCRBY', `${prefix}credits`, account, 1],
        ]);
      },
      { tool: 'credit', store, inProgressTtlMs, inProgress: { waitMs: 0, pollMs: 5 } },
    ),
  );
  const client = new Client({ name: 'c', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  await client.connect(clientSide);
  open = createMcpTx(client, { retry: false, dedupe: false });
  return { tx: open, runs };
}

describe('txTool handlers answering withEffect', () => {
  it('commits the effect once per key; a duplicate does not run the handler', async () => {
    const { tx, runs } = await creditServer(redisIdempotencyStore(redis, { prefix: `${prefix}a:` }));
    const first = await tx.call('credit', { account: 'a' }, { idempotencyKey: 'k-a' });
    const again = await tx.call('credit', { account: 'a' }, { idempotencyKey: 'k-a' });
    expect([first.meta.duplicate, again.meta.duplicate]).toEqual([false, true]);
    expect(runs).toEqual(['a']);
    expect(await redis.hget(`${prefix}credits`, 'a')).toBe('1');
    await tx.call('credit', { account: 'unkeyed' });
    expect(await redis.hget(`${prefix}credits`, 'unkeyed')).toBe('1');
  });

  it('applies nothing for a holder whose key expired and was taken over; it answers the stored result', async () => {
    const { tx, runs } = await creditServer(
      redisIdempotencyStore(redis, { prefix: `${prefix}b:` }),
      50,
      (run) => (run === 1 ? 300 : 0),
    );
    const slow = tx.call('credit', { account: 'b' }, { idempotencyKey: 'k-b' });
    await new Promise((resolve) => setTimeout(resolve, 100)); // the slow holder's record expires
    const quick = await tx.call('credit', { account: 'b' }, { idempotencyKey: 'k-b' });
    expect(quick.meta.duplicate).toBe(false);
    expect((await slow).meta.duplicate).toBe(true);
    expect(runs).toEqual(['b', 'b']);
    expect(await redis.hget(`${prefix}credits`, 'b')).toBe('1');
  });

  it('refuses withEffect on a store that cannot commit effects, naming the option, and frees the key', async () => {
    const store = memoryIdempotencyStore();
    const { tx } = await creditServer(store);
    const error = await expectFailure(tx.call('credit', { account: 'c' }, { idempotencyKey: 'k-c' }));
    expect(error.code).toBe(TxErrorCode.Validation);
    expect(error.message).toContain('options.store');
    expect((await store.begin('server credit:k-c', 'x', 1_000)).status).not.toBe('in_progress');
  });
});
