/**
 * An order saga run in a child process against the e2e server over Streamable HTTP, with its event
 * log in a JSONL file. MCP_URL, EVENTS_PATH, SAGA_ID; RESUME=1 resumes instead of starting;
 * CRASH_BEFORE_LOGGING=<step> kills the process with SIGKILL after that step ran on the server but
 * before the saga logged it — the worst moment. Prints the saga result as JSON.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  createMcpTx,
  type EventStore,
  mcpTxClientCapabilities,
  perRequestSignalFetch,
  Saga,
} from '../../src/index.js';
import { JsonlEventStore } from '../../src/node.js';
import { orderSteps } from './orderSaga.js';

const { MCP_URL, EVENTS_PATH, SAGA_ID, RESUME, CRASH_BEFORE_LOGGING } = process.env;
const client = new Client(
  { name: 'saga-client', version: '1.0.0' },
  { capabilities: mcpTxClientCapabilities() },
);
await client.connect(
  new StreamableHTTPClientTransport(new URL(MCP_URL as string), { fetch: perRequestSignalFetch() }),
);
const tx = createMcpTx(client, { retry: { baseDelayMs: 5, maxDelayMs: 50 } });

const journal = new JsonlEventStore(EVENTS_PATH as string, { fsync: true });
const events: EventStore = {
  read$: (filter) => journal.read$(filter),
  append: (event) => {
    if (event.type === 'SagaStepCompleted' && event.data?.step === CRASH_BEFORE_LOGGING)
      process.kill(process.pid, 'SIGKILL');
    return journal.append(event);
  },
};
const saga = new Saga(tx, events, orderSteps('o-1'));
const result = RESUME ? await saga.resume(SAGA_ID as string) : await saga.run(SAGA_ID);
console.log(JSON.stringify(result));
await journal.close();
await tx.close();
