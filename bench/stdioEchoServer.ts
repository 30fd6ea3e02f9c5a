/** The benchmarks' `echo` server on stdio, run as a child process by stdio.bench.ts. */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { echoServer } from './contenders.js';

await echoServer().connect(new StdioServerTransport());
