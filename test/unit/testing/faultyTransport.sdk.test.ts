import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createMcpTx,
  type McpTx,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  TxErrorCode,
} from '../../../src/index.js';
import { type FaultOptions, type FaultyTransport, faultyTransport } from '../../../src/testing/index.js';
import { expectFailure } from '../../support/fixture.js';

interface Faulty {
  readonly tx: McpTx;
  readonly transport: FaultyTransport;
  readonly handled: () => number;
  close(): Promise<void>;
}

let current: Faulty | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** A real server and client whose client side goes through a faulty transport (connected without faults). */
async function connectFaulty(options: FaultOptions): Promise<Faulty> {
  let handled = 0;
  const server = new McpServer(
    { name: 'faulty', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool('count', { inputSchema: { n: z.number() } }, async ({ n }) => {
    handled += 1;
    return { content: [{ type: 'text', text: String(n) }] };
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const transport = faultyTransport(clientSide, options);
  const client = new Client({ name: 'c', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  await client.connect(transport);
  const tx = createMcpTx(client, { retry: false, timeoutMs: 50 });
  current = {
    tx,
    transport,
    handled: () => handled,
    close: async () => {
      await tx.close({ timeoutMs: 100 });
      await server.close();
    },
  };
  return current;
}

describe('faultyTransport', () => {
  it('loses responses after the server ran the request: the client times out', async () => {
    const { tx, transport, handled } = await connectFaulty({ dropResponseRate: 1 });
    const error = await expectFailure(tx.call('count', { n: 1 }));
    expect(error.code).toBe(TxErrorCode.Timeout);
    expect(handled()).toBe(1);
    expect(transport.faults.droppedResponses).toBe(1);
  });

  it('fails sends before anything reaches the server', async () => {
    const { tx, transport, handled } = await connectFaulty({ failRate: 1 });
    const error = await expectFailure(tx.call('count', { n: 1 }));
    expect(error.code).toBe(TxErrorCode.NetworkError);
    expect(handled()).toBe(0);
    expect(transport.faults.failedSends).toBe(1);
  });

  it('delays incoming messages', async () => {
    const { tx, transport } = await connectFaulty({ delayMs: 20 });
    const started = Date.now();
    await tx.call('count', { n: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(19);
    expect(transport.faults.delayed).toBe(1);
  });

  it('drops the connection after disconnectAfter sends', async () => {
    const { tx, transport } = await connectFaulty({ disconnectAfter: 2 });
    await tx.call('count', { n: 1 });
    const error = await expectFailure(tx.call('count', { n: 2 }));
    expect(error.code).toBe(TxErrorCode.NetworkError);
    expect(transport.faults.disconnects).toBe(1);
  });

  it('injects the same faults for the same seed', async () => {
    const outcomes = async (seed: number) => {
      const { tx } = await connectFaulty({ dropResponseRate: 0.5, seed });
      const results: string[] = [];
      for (let n = 0; n < 12; n++)
        results.push(
          await tx.call('count', { n }).then(
            () => 'ok',
            (e) => e.code,
          ),
        );
      await current?.close();
      current = undefined;
      return results;
    };
    const first = await outcomes(7);
    expect(await outcomes(7)).toEqual(first);
    expect(first).toContain('ok');
    expect(first).toContain(TxErrorCode.Timeout);
  });

  it('rejects bad options, naming the field', () => {
    const [side] = InMemoryTransport.createLinkedPair();
    expect(() => faultyTransport(side, { failRate: 2 })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.failRate' }),
    );
  });
});
