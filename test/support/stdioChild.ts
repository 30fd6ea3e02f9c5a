import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createMcpTx, mcpTxClientCapabilities, type TxConfig } from '../../src/index.js';
import { scriptArgs } from './childScript.js';
import { keepConnected } from './reconnect.js';

/**
 * A server script (bundled, see `scriptArgs`) in a child process over stdio, behind an McpTx; the client starts
 * a new child whenever the connection drops. `transports` holds each connection made, so a test
 * can kill the current child (`transports.at(-1).pid`).
 */
export async function connectStdioChild(script: string, config: TxConfig, env: Record<string, string> = {}) {
  const transports: StdioClientTransport[] = [];
  const client = new Client(
    { name: 'stdio-test', version: '1.0.0' },
    { capabilities: mcpTxClientCapabilities() },
  );
  const connection = await keepConnected(client, async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: scriptArgs(script),
      env: { ...(process.env as Record<string, string>), ...env },
      stderr: 'ignore',
    });
    transports.push(transport);
    return transport;
  });
  return { tx: createMcpTx(client, config), connection, transports };
}
