/**
 * `sendCancellation: false`: no `notifications/cancelled` reaches the server — python-sdk 1.12.0
 * servers (the Python MCP-Tx 0.1.0 era) die on it — on a timeout, an abort, an unsubscribe or
 * `close()`, on a client the user connected and on one mcp-tx connects; the call still ends at
 * once. With the default (`true`), each of them is cancelled on the wire as before.
 */
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMcpTx, type McpTx, mcpTxServerCapabilities, TxErrorCode } from '../../../src/index.js';
import { cancellations, connectFixture, expectFailure, type Fixture, until } from '../../support/fixture.js';

let fixture: Fixture | undefined;
let closeManaged: (() => Promise<void>) | undefined;
afterEach(async () => {
  await fixture?.close();
  await closeManaged?.();
  fixture = undefined;
  closeManaged = undefined;
});

/** The ways a call in flight is given up, each with how the call fails (none for an unsubscribe). */
const giveUps = {
  timeout: (tx: McpTx) => tx.call('linger', { ms: 300 }, { timeoutMs: 20, retry: false }),
  abort: (tx: McpTx) => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    return tx.call('linger', { ms: 300 }, { signal: controller.signal, retry: false });
  },
  unsubscribe: async (tx: McpTx) => {
    const subscription = tx.call$('linger', { ms: 300 }, { retry: false }).subscribe({ error: () => {} });
    await new Promise((resolve) => setTimeout(resolve, 20));
    subscription.unsubscribe();
  },
  close: async (tx: McpTx) => {
    const call = tx.call('linger', { ms: 300 }, { retry: false });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await tx.close({ timeoutMs: 0 });
    return call;
  },
} as const;
const failsWith = {
  timeout: TxErrorCode.Timeout,
  abort: TxErrorCode.Cancelled,
  unsubscribe: undefined,
  close: TxErrorCode.Cancelled,
} as const;

/** A fixture with `linger`: waits `ms` (or until its signal aborts), then says how it ended in `ends`. */
async function lingering(sendCancellation: boolean) {
  const ends: string[] = [];
  fixture = await connectFixture({
    config: { sendCancellation },
    register: (server) =>
      server.registerTool('linger', { inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          extra.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        ends.push(extra.signal.aborted ? 'aborted' : 'ran');
        return { content: [{ type: 'text', text: 'late' }] };
      }),
  });
  return { ...fixture, ends };
}

describe.each([true, false])('sendCancellation: %s, on a client the user connected', (sendCancellation) => {
  it.each(Object.keys(giveUps) as (keyof typeof giveUps)[])('a call given up by %s', async (how) => {
    const { tx, received, ends } = await lingering(sendCancellation);
    const outcome = await Promise.resolve(giveUps[how](tx)).catch((error: unknown) => error);
    if (failsWith[how] !== undefined) expect(outcome).toMatchObject({ code: failsWith[how] });
    await until(() => ends.length === 1);
    if (sendCancellation) {
      expect(cancellations(received)).toHaveLength(1);
      expect(ends).toEqual(['aborted']);
    } else {
      expect(cancellations(received)).toEqual([]);
      // the server runs the request to its end (closing the connection ends it, not a notification)
      if (how !== 'close') expect(ends).toEqual(['ran']);
    }
  });
});

describe('sendCancellation: false, on a connection mcp-tx makes (createMcpTx(connect))', () => {
  it('sends no notifications/cancelled on a timeout, on this or a later connection', async () => {
    const received: JSONRPCMessage[] = [];
    let finished = 0;
    const servers: McpServer[] = [];
    const connect = async () => {
      const server = new McpServer(
        { name: 'py-1.12', version: '1.0.0' },
        { capabilities: mcpTxServerCapabilities() },
      );
      server.registerTool('slow', { inputSchema: { ms: z.number() } }, async ({ ms }) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        finished += 1;
        return { content: [{ type: 'text', text: 'late' }] };
      });
      servers.push(server);
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      await server.connect(serverSide);
      const deliver = serverSide.onmessage;
      serverSide.onmessage = (message, extra) => {
        received.push(message);
        deliver?.(message, extra);
      };
      return clientSide;
    };
    const tx = createMcpTx(connect, { sendCancellation: false });
    closeManaged = async () => {
      await tx.close({ timeoutMs: 0 });
      await Promise.all(servers.map((server) => server.close()));
    };
    await tx.ready;
    const error = await expectFailure(tx.call('slow', { ms: 100 }, { timeoutMs: 20, retry: false }));
    expect(error.code).toBe(TxErrorCode.Timeout);
    await until(() => finished === 1); // its late answer is dropped by the client
    expect(cancellations(received)).toEqual([]);
    // a later call on the same connection is answered as usual
    expect((await tx.call('slow', { ms: 0 })).data).toBe('late');
  });
});
