/**
 * Throughput of the Redis idempotency store for new keys (a `begin` and a `complete`: two round
 * trips per call) from 1 and from 4 processes, 32 calls in flight each.
 * Needs Redis at REDIS_URL (default 127.0.0.1:6379). Run: `npm run bench`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { machineLine } from './harness.js';

const run = promisify(execFile);
const worker = fileURLToPath(new URL('./redisStoreWorker.ts', import.meta.url));
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CALLS = Number(process.env.BENCH_REDIS_CALLS ?? 20_000);
const prefix = `mcp-tx-bench:${Date.now()}:`;

/** New calls/s from `processes` workers that all start at one moment, once every one of them is up. */
async function measure(processes: number): Promise<number> {
  const startAt = Date.now() + 1_500 * processes; // room for each child's tsx start-up
  const env = {
    ...process.env,
    REDIS_URL: url,
    PREFIX: prefix,
    CALLS: String(Math.round(CALLS / processes)),
    START_AT: String(startAt),
  };
  const outputs = await Promise.all(
    Array.from({ length: processes }, () => run(process.execPath, ['--import', 'tsx', worker], { env })),
  );
  const endedAt = Math.max(
    ...outputs.map(({ stdout }) => (JSON.parse(stdout) as { endedAt: number }).endedAt),
  );
  return CALLS / ((endedAt - startAt) / 1_000);
}

const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
const available = await redis.connect().then(
  () => true,
  () => false,
);
let table: string;
if (available) {
  const rows = [];
  for (const processes of [1, 4]) rows.push(`| ${processes} | ${Math.round(await measure(processes))} | 2 |`);
  const keys = await redis.keys(`${prefix}*`);
  for (let index = 0; index < keys.length; index += 1_000)
    await redis.del(...keys.slice(index, index + 1_000));
  table = [
    `Redis idempotency store, ${CALLS} new keys (begin + complete), 32 in flight per process, all processes starting together; ${machineLine()}.`,
    '',
    '| processes | new calls/s | round trips per call |',
    '|---:|---:|---:|',
    ...rows,
  ].join('\n');
} else {
  table = `Skipped: no Redis at ${url}.`;
}
redis.disconnect();
console.log(table);
writeFileSync(new URL('./results/redisStore.md', import.meta.url), `${table}\n`);
