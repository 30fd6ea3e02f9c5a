/**
 * The CLI tests' server on stdio, for `mcp-tx batch --stdio`. With `--silent <file>` it is a server
 * that never answers `initialize`: it creates `file` once started (so a test knows the connection is
 * pending) and exits when its stdin closes.
 */
import { writeFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createCliServer } from './cliServer.js';

const [mode, startedFile] = process.argv.slice(2);
if (mode === '--silent' && startedFile !== undefined) {
  process.stdin.on('end', () => process.exit(0)).resume();
  writeFileSync(startedFile, '');
} else {
  await createCliServer().connect(new StdioServerTransport());
}
