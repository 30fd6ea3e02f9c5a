import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { McpTx } from '../../src/index.js';
import { eventually, until } from '../support/fixture.js';
import type { Reconnector } from '../support/reconnect.js';
import { redisUrl, testRedis } from '../support/redis.js';
import { connectStdioChild } from '../support/stdioChild.js';

const serverScript = new URL('./txToolServer.ts', import.meta.url).pathname;
const { redis, prefix } = testRedis();

let open: { tx: McpTx; connection: Reconnector } | undefined;
afterEach(async () => {
  open?.connection.stop();
  await open?.tx.close({ timeoutMs: 1_000 });
  open = undefined;
});

describe('a txTool server on the Redis store, killed with SIGKILL mid-burst and restarted', () => {
  it('completes every keyed call, and each key’s effect happens exactly once', async () => {
    const run = `${prefix}crash:`;
    const { tx, connection, transports } = await connectStdioChild(
      serverScript,
      { retry: { maxAttempts: 40, baseDelayMs: 20, maxDelayMs: 200, jitter: false } },
      { REDIS_URL: redisUrl, PREFIX: run },
    );
    open = { tx, connection };
    const accounts = Array.from({ length: 60 }, (_, index) => `acct-${index}`);
    let finished = 0;
    const burst = lastValueFrom(
      from(accounts).pipe(
        mergeMap(
          (account) =>
            tx
              .call('credit', { account, cents: 100, workMs: 100 }, { idempotencyKey: `credit-${account}` })
              .finally(() => {
                finished += 1;
              }),
          8,
        ),
        toArray(),
      ),
    );
    const total = async (hash: string) =>
      Object.values(await redis.hgetall(`${run}${hash}`)).reduce((sum, count) => sum + Number(count), 0);
    await until(() => finished >= 15, 15_000);
    // Kill while a handler is mid-call: it has started (runs) and its credit is not committed yet.
    await eventually(
      async () => (await total('runs')) > Object.keys(await redis.hgetall(`${run}credits`)).length,
    );
    process.kill(transports[0]?.pid as number, 'SIGKILL');
    const results = await burst;

    expect(results.map((result) => result.meta.status)).toEqual(accounts.map(() => 'completed'));
    expect(connection.connections).toBeGreaterThanOrEqual(2);
    const credits = await redis.hgetall(`${run}credits`);
    expect(Object.keys(credits).sort()).toEqual([...accounts].sort());
    expect(Object.values(credits).every((cents) => cents === '100')).toBe(true);
    // The kill caught handlers mid-call: their keys ran again after the restart, yet credited once.
    const runs = Object.values(await redis.hgetall(`${run}runs`)).reduce(
      (sum, count) => sum + Number(count),
      0,
    );
    expect(runs).toBeGreaterThan(accounts.length);
  }, 60_000);
});
