/** The CLI tests' server on stdio, for `mcp-tx batch --stdio`. */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createCliServer } from './cliServer.js';

await createCliServer().connect(new StdioServerTransport());
