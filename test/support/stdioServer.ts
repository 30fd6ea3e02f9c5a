/** The end-to-end server on stdio, for tests that run it as a child process. */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createE2eServer } from './e2eServer.js';

await createE2eServer().connect(new StdioServerTransport());
