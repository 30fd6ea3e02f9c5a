/**
 * An MCP-Tx server on stdio for `mcp-tx batch --stdio` that exits by itself:
 * `--ledger <file> --exit-every <n>`. `charge({ id, ms? })` waits `ms`, then charges `id` through
 * `txTool` and a {@link ledgerStore} on `file` (the charge and its key's completion written in one
 * line); once this process has received `n` calls, it exits (code 0) right after writing the next
 * charge, before answering it. Each start appends a line to `<file>.lives`. Started again on the
 * same ledger, it knows what it charged: a retry of a completed key is answered from the ledger.
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { ledgerStore } from '../../src/cli/ledgerStore.js';
import { mcpTxServerCapabilities } from '../../src/core/wire.js';
import { withEffect } from '../../src/server/effect.js';
import { txTool } from '../../src/server/txTool.js';

const { values } = parseArgs({ options: { ledger: { type: 'string' }, 'exit-every': { type: 'string' } } });
const ledger = values.ledger as string;
const exitEvery = Number(values['exit-every'] ?? Number.POSITIVE_INFINITY);
appendFileSync(`${ledger}.lives`, `${process.pid}\n`);

let calls = 0;
let started = false;
const store = ledgerStore<{ id: string }>(ledger, () => {
  if (started && calls >= exitEvery) process.exit(0);
});
started = true;

const server = new McpServer(
  { name: 'crashing', version: '1.0.0' },
  { capabilities: mcpTxServerCapabilities() },
);
const charge = txTool(
  async ({ id, ms }: { id: string; ms?: number }) => {
    await new Promise((resolve) => setTimeout(resolve, ms ?? 0));
    return withEffect({ content: [{ type: 'text' as const, text: JSON.stringify({ id }) }] }, { id });
  },
  { tool: 'charge', store },
);
server.registerTool(
  'charge',
  { inputSchema: { id: z.string(), ms: z.number().optional() } },
  (args, extra) => {
    calls += 1;
    return charge(args, extra);
  },
);
await server.connect(new StdioServerTransport());
