import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createMcpTx, mcpTxClientCapabilities } from 'mcp-tx';

/** The server script next to this one, in TypeScript. */
const serverPath = fileURLToPath(new URL('./server.ts', import.meta.url));

/** Whether a process with this id is still there. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The stdio quickstart: starts `server.ts` as a child process with the SDK's `StdioClientTransport`,
 * makes a plain call and keyed calls through `createMcpTx` — the same key twice is charged once,
 * the client's dedupe answering the second; the same key sent past the client's dedupe is answered
 * by the server's `txTool` — then closes, which ends the child.
 */
export async function main(log: (line: string) => void = console.log) {
  const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
  const transport = new StdioClientTransport({
    command: process.execPath, // node; tsx runs the TypeScript server
    // the condition resolves `mcp-tx` to this repository's sources (an installed mcp-tx needs none)
    args: ['--import', 'tsx', '--conditions=mcp-tx-source', serverPath],
  });
  await client.connect(transport);
  const tx = createMcpTx(client, { timeoutMs: 10_000 });
  const pid = transport.pid as number;
  log(`server started (pid ${pid}); it speaks MCP-Tx: ${tx.serverSupportsTx}`);

  // Promise style
  const { data, meta } = await tx.call('get_weather', { city: 'Lyon' });
  log(`get_weather → ${JSON.stringify(data)} (attempts: ${meta.attempts}, request ${meta.requestId})`);

  // Observable style: cold, cancellable, composable
  const charge = () =>
    tx.call$('charge', { orderId: 'order-42', cents: 500 }, { idempotencyKey: 'order-42' }).subscribe({
      next: ({ meta }) => log(meta.duplicate ? 'already charged' : 'charged'),
      error: (error) => log(`${error.code}: ${error.message}`), // a TxError
    });
  await new Promise<void>((done) => charge().add(() => done()));
  await new Promise<void>((done) => charge().add(() => done())); // the same key again: the client's dedupe answers

  // Past the client's dedupe, the server's txTool answers the key with the stored result.
  const replay = await tx.call(
    'charge',
    { orderId: 'order-42', cents: 500 },
    { idempotencyKey: 'order-42', dedupe: false },
  );
  log(`sent again to the server: duplicate=${replay.meta.duplicate} ${JSON.stringify(replay.data)}`);
  const charges = (await tx.call('charges', {})).data as Record<string, number>;
  log(`charges made on the server: ${JSON.stringify(charges)}`);

  await tx.close(); // closes the client, and so the server's stdin: the child exits
  const childExited = !isRunning(pid);
  log(`server process ${pid} ${childExited ? 'exited' : 'is still running'}`);
  return { weather: data, serverDuplicate: replay.meta.duplicate, charges, childExited };
}
