/**
 * A client process that creates a task and exits at once (`process.exit`) without waiting for it:
 * `task$('build', { key: KEY, ms: MS })` on the server at `URL`, its creation logged in the JSONL
 * event log at `EVENTS`. Prints `created <taskId>` before it exits.
 */
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMcpTx } from '../../src/index.js';
import { JsonlEventStore } from '../../src/node.js';

const tx = createMcpTx(() => new StreamableHTTPClientTransport(new URL(process.env.URL as string)), {
  events: new JsonlEventStore(process.env.EVENTS as string),
});
const key = process.env.KEY as string;
tx.task$('build', { key, ms: Number(process.env.MS) }, { idempotencyKey: `build-${key}` }).subscribe(
  (event) => {
    if (event.type !== 'created') return;
    process.stdout.write(`created ${event.taskId}\n`);
    process.exit(0);
  },
);
