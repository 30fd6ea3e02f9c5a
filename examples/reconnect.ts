import { fileURLToPath } from 'node:url';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMcpTx, mcpTxServerCapabilities, type TxResult } from 'mcp-tx';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { z } from 'zod';

/** This file: run as a child process with MCP_TX_EXAMPLE_ROLE=server, it is the MCP server. */
const thisFile = fileURLToPath(import.meta.url);

/** The server: a read-only `quote` tool, answered by whichever process is running (its pid says which). */
async function serve() {
  const server = new McpServer(
    { name: 'quotes', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool(
    'quote',
    { inputSchema: { symbol: z.string() }, annotations: { readOnlyHint: true } },
    async ({ symbol }) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const quote = { symbol, price: 100 + symbol.length, pid: process.pid };
      return { content: [{ type: 'text', text: JSON.stringify(quote) }], structuredContent: quote };
    },
  );
  await server.connect(new StdioServerTransport());
}
if (process.env.MCP_TX_EXAMPLE_ROLE === 'server') await serve();

/**
 * A server killed mid-burst, and every call completes. `createMcpTx(connect)` owns the connection:
 * it starts the server (this file, as a child process over stdio), and when the server dies it
 * starts a new one with backoff. Calls made meanwhile wait for the connection; the calls the kill
 * caught in flight (their outcome unknown) are retried after the reconnect, since `quote` is
 * read-only — a tool with an effect needs an idempotency key and `txTool` on a shared store.
 */
export async function main(log: (line: string) => void = console.log) {
  const servers: StdioClientTransport[] = [];
  const connect = () => {
    const transport = new StdioClientTransport({
      command: process.execPath, // node, running this file with tsx as the server
      args: ['--import', 'tsx', '--conditions=mcp-tx-source', thisFile],
      env: { ...(process.env as Record<string, string>), MCP_TX_EXAMPLE_ROLE: 'server' },
    });
    servers.push(transport);
    return transport;
  };
  const tx = createMcpTx(connect, {
    reconnect: { baseDelayMs: 100, maxDelayMs: 5_000 }, // the defaults; maxAttempts: Infinity
    retry: { maxAttempts: 5, baseDelayMs: 100 },
  });
  tx.connection$.subscribe(({ state, attempt, error }) => {
    const why = error === undefined ? '' : ` after: ${error.message}`;
    log(`connection: ${state}${attempt > 0 ? ` (attempt ${attempt})` : ''}${why}`);
  });
  await tx.ready; // the first connection is made

  const symbols = Array.from({ length: 40 }, (_, index) => `SYM${index}`);
  let done = 0;
  const burst = lastValueFrom(
    from(symbols).pipe(
      mergeMap(
        (symbol) =>
          tx.call('quote', { symbol }).finally(() => {
            done += 1;
          }),
        4,
      ),
      toArray(),
    ),
  );
  while (done < 10) await new Promise((resolve) => setTimeout(resolve, 5));
  const killed = servers[0]?.pid as number;
  process.kill(killed, 'SIGKILL'); // mid-burst: 4 calls in flight
  log(`killed the server (pid ${killed}) after ${done} calls`);

  const results: TxResult[] = await burst;
  const completed = results.filter((result) => result.meta.status === 'completed').length;
  const retried = results.filter((result) => result.meta.attempts > 1).length;
  const answeredBy = new Set(results.map((result) => (result.data as { pid: number }).pid));
  log(
    `${completed}/${symbols.length} completed, ${retried} after a retry, answered by ${answeredBy.size} servers`,
  );

  await tx.close(); // closes the client: the last server exits
  return { completed, retried, servers: servers.length, answeredBy: answeredBy.size };
}
