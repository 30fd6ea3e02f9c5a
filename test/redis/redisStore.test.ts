import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MAX_TIMEOUT_MS } from '../../src/config/validators.js';
import { TxErrorCode } from '../../src/index.js';
import { redisIdempotencyStore } from '../../src/redis.js';
import { scriptArgs } from '../support/childScript.js';
import { redisUrl, testRedis, unreachableRedis } from '../support/redis.js';

const run = promisify(execFile);
const worker = fileURLToPath(new URL('./dedupeWorker.ts', import.meta.url));
const { redis, prefix } = testRedis();

describe('redisIdempotencyStore on a real Redis', () => {
  it('begins a key once, then answers in progress, conflict, completed; release frees it', async () => {
    const store = redisIdempotencyStore(redis, { prefix });
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => store.begin('a', 'f', 5_000)));
    expect(outcomes.filter((outcome) => outcome.status === 'new')).toHaveLength(1);
    expect((await store.begin('a', 'other', 5_000)).status).toBe('conflict');
    await store.release('a');
    expect((await store.begin('a', 'f', 5_000)).status).toBe('new');
    const record = { kind: 'result' as const, result: { content: [{ type: 'text' as const, text: 'ok' }] } };
    await store.complete('a', 'f', record, 5_000);
    await store.release('a');
    expect(await store.begin('a', 'f', 5_000)).toEqual({ status: 'completed', record });
  });

  it('release with a token drops only the hold that token names', async () => {
    const store = redisIdempotencyStore(redis, { prefix });
    const first = (await store.begin('r', 'f', 30)) as { token: string };
    await new Promise((resolve) => setTimeout(resolve, 60));
    const second = (await store.begin('r', 'f', 5_000)) as { token: string };
    await store.release('r', first.token); // the expired holder, late
    expect((await store.begin('r', 'f', 5_000)).status).toBe('in_progress');
    await store.release('r', second.token);
    expect((await store.begin('r', 'f', 5_000)).status).toBe('new');
  });

  it('lets an in-progress record expire, so a crashed holder does not block the key', async () => {
    const store = redisIdempotencyStore(redis, { prefix });
    await store.begin('b', 'f', 50);
    expect((await store.begin('b', 'f', 50)).status).toBe('in_progress');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect((await store.begin('b', 'f', 50)).status).toBe('new');
  });

  it('executes each key once across 4 worker processes; the other workers get duplicates', async () => {
    const env = { ...process.env, REDIS_URL: redisUrl, PREFIX: `${prefix}workers:`, KEYS: '30' };
    const outputs = await Promise.all(
      Array.from({ length: 4 }, () => run(process.execPath, scriptArgs(worker), { env, timeout: 60_000 })),
    );
    const reports = outputs.map(({ stdout }) => JSON.parse(stdout.trim().split('\n').at(-1) as string));
    const executed = reports.flatMap((report) => report.executed as string[]);
    expect(executed).toHaveLength(30);
    expect(new Set(executed).size).toBe(30);
    expect(reports.every((report) => report.completed === 30)).toBe(true);
    expect(reports.reduce((sum, report) => sum + report.duplicates, 0)).toBe(4 * 30 - 30);
  }, 60_000);

  it('commits an effect with the completion only while the caller holds the key', async () => {
    const store = redisIdempotencyStore(redis, { prefix });
    const record = { kind: 'result' as const, result: { content: [{ type: 'text' as const, text: 'ok' }] } };
    const first = await store.begin('e', 'f', 50);
    expect(first).toMatchObject({ status: 'new', token: expect.any(String) });
    await new Promise((resolve) => setTimeout(resolve, 80)); // our hold expires
    const second = await store.begin('e', 'f', 5_000); // and another request takes the key
    const stale = {
      key: 'e',
      fingerprint: 'f',
      record,
      ttlMs: 5_000,
      token: (first as { token: string }).token,
    };
    expect(await store.commit([['INCR', `${prefix}effect`]], stale)).toBe(false);
    expect(await redis.get(`${prefix}effect`)).toBeNull();
    const held = { ...stale, token: (second as { token: string }).token };
    expect(
      await store.commit(
        [
          ['INCR', `${prefix}effect`],
          ['INCRBY', `${prefix}effect`, 2],
        ],
        held,
      ),
    ).toBe(true);
    expect(await redis.get(`${prefix}effect`)).toBe('3');
    expect(await store.begin('e', 'f', 5_000)).toEqual({ status: 'completed', record });
    expect(await store.commit([['INCR', `${prefix}effect`]], held)).toBe(false); // completed: not ours any more
    expect(await store.commit([['INCR', `${prefix}effect`]])).toBe(true); // no key: just the effect
    expect(await redis.get(`${prefix}effect`)).toBe('4');
  });

  it('commits a key handed out while failing open only if nobody has taken it since', async () => {
    const store = redisIdempotencyStore(redis, { prefix, failOpen: true });
    const record = { kind: 'result' as const, result: { content: [] } };
    const unheld = { key: 'u', fingerprint: 'f', record, ttlMs: 5_000 }; // as after a begin that failed open
    expect(await store.commit([['INCR', `${prefix}unheld`]], unheld)).toBe(true);
    expect(await store.begin('u', 'f', 5_000)).toEqual({ status: 'completed', record });
    expect(await store.commit([['INCR', `${prefix}unheld`]], unheld)).toBe(false);
    await store.begin('v', 'f', 5_000); // another request holds v
    expect(await store.commit([['INCR', `${prefix}unheld`]], { ...unheld, key: 'v' })).toBe(false);
    expect(await redis.get(`${prefix}unheld`)).toBe('1');
  });

  it('names the bad part of an effect, and never fails a commit open', async () => {
    const store = redisIdempotencyStore(redis, { prefix });
    await expect(store.commit([])).rejects.toMatchObject({ code: TxErrorCode.Validation, field: 'effect' });
    await expect(store.commit([['', 'k']] as never)).rejects.toMatchObject({ field: 'effect.0.0' });
    await expect(store.commit([['SET', 'k', { v: 1 }]] as never)).rejects.toMatchObject({
      field: 'effect.0.2',
    });
    const record = { kind: 'result' as const, result: { content: [] } };
    await expect(
      store.commit([['INCR', 'k']], { key: 'k', fingerprint: 'f', record, ttlMs: 1 }),
    ).rejects.toMatchObject({ field: 'completion.token' });
    const down = unreachableRedis();
    const open = redisIdempotencyStore(down, { prefix, failOpen: true });
    await expect(open.commit([['INCR', `${prefix}never`]])).rejects.toMatchObject({
      code: TxErrorCode.StoreUnavailable,
    });
    down.disconnect();
  });

  it('takes commandTimeoutMs as a whole number of milliseconds from 1 to MAX_TIMEOUT_MS', () => {
    expect(() => redisIdempotencyStore(redis, { commandTimeoutMs: MAX_TIMEOUT_MS })).not.toThrow();
    expect(() => redisIdempotencyStore(redis, { commandTimeoutMs: 0 })).toThrow(
      expect.objectContaining({
        code: TxErrorCode.Validation,
        message: 'Invalid options.commandTimeoutMs: must be greater than 0',
      }),
    );
    expect(() => redisIdempotencyStore(redis, { commandTimeoutMs: MAX_TIMEOUT_MS + 1 })).toThrow(
      `Invalid options.commandTimeoutMs: must be at most ${MAX_TIMEOUT_MS}`,
    );
  });

  it('fails closed with MCP_TX_STORE_UNAVAILABLE when Redis is unreachable, or goes ahead when failOpen', async () => {
    const down = unreachableRedis();
    const closed = redisIdempotencyStore(down, { prefix });
    await expect(closed.begin('c', 'f', 1_000)).rejects.toMatchObject({
      code: TxErrorCode.StoreUnavailable,
      retryable: true,
    });
    const open = redisIdempotencyStore(down, { prefix, failOpen: true });
    expect(await open.begin('c', 'f', 1_000)).toEqual({ status: 'new' });
    down.disconnect();
  });
});
