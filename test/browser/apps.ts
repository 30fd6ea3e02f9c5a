/**
 * Three small browser apps, as sources for {@link bundleForBrowser}: the same type-ahead search
 * with the bare SDK client, with `tx.call$` only, and with the operators composed by hand. What
 * mcp-tx adds to a bundle is the difference between the first and the others.
 */

const transport = `import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
const connect = () => new StreamableHTTPClientTransport(new URL('/mcp', location.href));
const queries = fromEvent(document.querySelector('input'), 'input').pipe(map((event) => event.target.value));`;

/** The baseline: rxjs and the SDK's `Client` over Streamable HTTP, no mcp-tx. */
export const BARE_SDK_APP = `import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { from, fromEvent, map, switchMap } from 'rxjs';
${transport}
const client = new Client({ name: 'app', version: '1.0.0' });
await client.connect(connect());
queries.pipe(switchMap((q) => from(client.callTool({ name: 'search', arguments: { q } })))).subscribe(console.log);`;

/** `createMcpTx(connect)` and `tx.call$` inside `switchMap`: the default pipeline, nothing more. */
export const CALL_APP = `import { createMcpTx } from 'mcp-tx';
import { fromEvent, map, switchMap } from 'rxjs';
${transport}
const tx = createMcpTx(connect);
queries.pipe(switchMap((q) => tx.call$('search', { q }))).subscribe(console.log);`;

/** `tx.attempt$` with throttle, circuitBreak, retryWithPolicy and dedupe composed by hand. */
export const OPERATORS_APP = `import { CircuitBreaker, createMcpTx, memoryIdempotencyStore, tokenBucket } from 'mcp-tx';
import { circuitBreak, dedupe, retryWithPolicy, throttle } from 'mcp-tx/operators';
import { fromEvent, map, switchMap } from 'rxjs';
${transport}
const tx = createMcpTx(connect, { retry: false, dedupe: false });
const breaker = new CircuitBreaker({ failureThreshold: 3 });
const limiter = tokenBucket({ ratePerSecond: 20, burst: 5 });
const store = memoryIdempotencyStore();
queries
  .pipe(switchMap((q) => tx.attempt$('search', { q }, { idempotencyKey: q })
    .pipe(throttle(limiter), circuitBreak(breaker), retryWithPolicy({ maxAttempts: 3 }), dedupe(store))))
  .subscribe(console.log);`;

/** Every browser entry whole (what a bundler without tree-shaking would take). */
export const ALL_BROWSER_ENTRIES = "export * from 'mcp-tx'; export * from 'mcp-tx/operators';";
