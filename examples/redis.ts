import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Redis } from 'ioredis';
import { createMcpTx, mcpTxServerCapabilities, txTool, withEffect } from 'mcp-tx';
import { RedisCircuitBreaker, RedisEventStore, redisIdempotencyStore, redisRateLimiter } from 'mcp-tx/redis';
import { lastValueFrom, toArray } from 'rxjs';
import { z } from 'zod';
import { connectInProcess } from './demo-server.js';

/** What this example writes in Redis; it deletes them before and after it runs. */
const exampleKeys = [
  'shop:balances',
  'shop:ledger',
  'shop:events',
  'search-api',
  '{search-api}',
  '{search-api}:probe',
];

/**
 * A ledger server, one of several replicas: `credit` is exactly-once per idempotency key across
 * them, and its Redis writes are committed with the key (`withEffect`), so a replica killed mid-call
 * leaves neither.
 */
function ledgerServer(redis: Redis): McpServer {
  const server = new McpServer(
    { name: 'ledger', version: '1.0.0' },
    { capabilities: mcpTxServerCapabilities() },
  );
  server.registerTool(
    'credit',
    { inputSchema: { account: z.string(), cents: z.number().int() } },
    txTool(
      async ({ account, cents }) =>
        withEffect({ content: [{ type: 'text', text: `credited ${account}` }] }, [
          ['HINCRBY', 'shop:balances', account, cents],
          ['XADD', 'shop:ledger', '*', 'account', account, 'cents', cents],
        ]),
      { tool: 'credit', store: redisIdempotencyStore(redis), inProgressTtlMs: 10_000 },
    ),
  );
  return server;
}

/**
 * Many processes on one Redis, two here: each has its own ledger replica and its own McpTx, and they
 * share the idempotency store, the rate budget, the breaker and the event log. A credit sent by
 * both is made once. Needs a Redis at REDIS_URL (default 127.0.0.1:6379); it writes, then deletes,
 * {@link exampleKeys} and the idempotency keys `shop:idem:*` (the clients') and
 * `mcp-tx:idem:server credit:*` (the ledger's, on the store's default prefix).
 */
export async function main(log: (line: string) => void = console.log) {
  // ioredis's defaults are fine: mcp-tx bounds every Redis operation with `commandTimeoutMs`
  // (default 2 s), so a Redis down or stalled fails calls with MCP_TX_STORE_UNAVAILABLE (not retried)
  // in bounded time instead of leaving them pending while ioredis retries (over a minute; forever when stalled).
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const reachable = await Promise.race([
    redis.ping().then(() => true),
    new Promise<false>((resolve) => setTimeout(resolve, 3_000, false).unref()),
  ]);
  if (!reachable) {
    redis.disconnect();
    throw new Error(
      `No Redis answers at ${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}: set REDIS_URL`,
    );
  }
  const cleanUp = async () => {
    const clientKeys = await redis.keys('shop:idem:*');
    const serverKeys = await redis.keys('mcp-tx:idem:server credit:*');
    await redis.del(...exampleKeys, ...clientKeys, ...serverKeys);
  };
  await cleanUp();

  /** One process: a ledger replica, a client connected to it, an McpTx sharing everything on Redis. */
  const startProcess = async () => {
    const client = await connectInProcess(ledgerServer(redis));
    // biome-ignore format: the comments are aligned
    const tx = createMcpTx(client, {
      dedupe: { store: redisIdempotencyStore(redis, { prefix: 'shop:idem:' }) },            // each key runs once across processes
      limiter: redisRateLimiter(redis, { key: 'search-api', ratePerSecond: 20, burst: 5 }), // one budget for all
      breaker: new RedisCircuitBreaker(redis, { key: 'search-api', failureThreshold: 5 }),  // one breaker for all
      events: new RedisEventStore(redis, { stream: 'shop:events' }),                       // one log; live$() follows it
    });
    return tx;
  };
  const [first, second] = [await startProcess(), await startProcess()];

  const credit = { account: 'acct-1', cents: 500 };
  const made = await first.call('credit', credit, { idempotencyKey: 'credit-1' });
  log(`process 1: ${JSON.stringify(made.data)} (duplicate: ${made.meta.duplicate})`);
  const shared = await second.call('credit', credit, { idempotencyKey: 'credit-1' });
  log(
    `process 2, the same key: duplicate ${shared.meta.duplicate}, ${shared.meta.attempts} attempts (the shared store answered)`,
  );
  const served = await second.call('credit', credit, { idempotencyKey: 'credit-1', dedupe: false });
  log(
    `process 2, past its dedupe: duplicate ${served.meta.duplicate} (its ledger replica's txTool answered)`,
  );

  const balance = Number(await redis.hget('shop:balances', 'acct-1'));
  const ledgerEntries = await redis.xlen('shop:ledger');
  log(`balance of acct-1: ${balance} cents; ledger entries: ${ledgerEntries}`);
  const events = await lastValueFrom(
    new RedisEventStore(redis, { stream: 'shop:events' }).read$().pipe(toArray()),
  );
  log(`shared event log: ${events.length} events (${events.map((event) => event.type).join(', ')})`);
  const breakerState = await new RedisCircuitBreaker(redis, { key: 'search-api' }).getState();
  log(`shared breaker: ${breakerState}`);

  await first.close();
  await second.close();
  await cleanUp();
  await redis.quit();
  return {
    duplicates: [made.meta.duplicate, shared.meta.duplicate, served.meta.duplicate],
    balance,
    ledgerEntries,
    events: events.length,
    breakerState,
  };
}
