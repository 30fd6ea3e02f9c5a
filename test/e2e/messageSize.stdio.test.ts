import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMcpTx, type McpTx, TxErrorCode } from '../../src/index.js';
import { scriptArgs } from '../support/childScript.js';
import { expectFailure } from '../support/fixture.js';

const serverScript = new URL('../support/stdioServer.ts', import.meta.url).pathname;

let tx: McpTx;
beforeAll(async () => {
  tx = createMcpTx(
    () =>
      new StdioClientTransport({
        command: process.execPath,
        args: scriptArgs(serverScript),
        stderr: 'ignore',
      }),
    { dedupe: false, retry: false },
  );
  await tx.ready;
});
afterAll(() => tx.close({ timeoutMs: 1_000 }));

describe('the message size bound over stdio (the SDK reader drops messages over 10 MiB)', () => {
  it('fails a 10 MB call at once with MCP_TX_VALIDATION naming args and the size, nothing sent', async () => {
    const started = performance.now();
    const error = await expectFailure(tx.call('charge', { id: 'x'.repeat(10 * 2 ** 20) }));
    expect(performance.now() - started).toBeLessThan(2_000); // not the ~33 s of a dropped message
    expect(error).toMatchObject({ code: TxErrorCode.Validation, field: 'args', retryable: false });
    expect(error.message).toContain('10485769 bytes');
    expect(error.meta).toMatchObject({ attempts: 0, ack: false });
  });

  it('sends a call just under the default 4 MiB bound, which the stdio server reads', async () => {
    const id = 'y'.repeat(4 * 2 ** 20 - 9 * 1024);
    const result = await tx.call('charge', { id }, { timeoutMs: 20_000 });
    expect(result.meta.status).toBe('completed');
  });
});
