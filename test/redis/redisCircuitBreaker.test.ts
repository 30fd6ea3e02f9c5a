import { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/ids.js';
import { type BreakerPermit, RedisCircuitBreaker, TxError, TxErrorCode } from '../../src/index.js';
import { eventually } from '../support/fixture.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const connections: Redis[] = [];
const connect = () => {
  const redis = new Redis(url);
  connections.push(redis);
  return redis;
};
afterAll(async () => {
  const keys = await connections[0]?.keys('mcp-tx-test:breaker:*');
  if (keys?.length) await connections[0]?.del(...keys);
  for (const redis of connections) redis.disconnect();
});

const timeout = new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true });
const take1 = (breaker: RedisCircuitBreaker) =>
  firstValueFrom(breaker.acquire()).catch((error: TxError) => error) as Promise<BreakerPermit | TxError>;

/** Four breakers on four connections with one key: as four processes sharing one Redis. */
function breakers(options: { recoveryTimeoutMs: number }) {
  const key = `mcp-tx-test:breaker:${newRequestId()}`;
  return Array.from(
    { length: 4 },
    () => new RedisCircuitBreaker(connect(), { key, failureThreshold: 3, ...options }),
  );
}

describe('RedisCircuitBreaker on a real Redis', () => {
  it('opened by one, rejects in the others; after the recovery time exactly one gets the probe', async () => {
    const [first, ...others] = breakers({ recoveryTimeoutMs: 150 });
    if (!first) throw new Error('no breaker');
    const watched: string[] = [];
    const watching = others[0]?.state$.subscribe((state) => watched.push(state));
    await eventually(async () => watched.length === 1);
    for (let index = 0; index < 3; index++) ((await take1(first)) as BreakerPermit).failure(timeout);
    await eventually(async () => (await first.getState()) === 'open');
    for (const other of others) expect(await take1(other)).toMatchObject({ code: TxErrorCode.CircuitOpen });
    await eventually(async () => watched.length === 2);
    expect(watched).toEqual(['closed', 'open']);
    watching?.unsubscribe();

    await new Promise((resolve) => setTimeout(resolve, 160));
    const admissions = await Promise.all([first, ...others].map(take1));
    const probes = admissions.filter((admission) => !(admission instanceof TxError)) as BreakerPermit[];
    expect(probes).toHaveLength(1);
    probes[0]?.success();
    await eventually(async () => (await first.getState()) === 'closed');
    for (const breaker of others) expect(await take1(breaker)).not.toBeInstanceOf(TxError);
  });

  it('re-opens on a failed probe, and does not count errors that are not failures', async () => {
    const [breaker] = breakers({ recoveryTimeoutMs: 50 });
    if (!breaker) throw new Error('no breaker');
    for (let index = 0; index < 5; index++) {
      ((await take1(breaker)) as BreakerPermit).failure(new TxError(TxErrorCode.Validation, 'bad input'));
    }
    expect(await breaker.getState()).toBe('closed');
    for (let index = 0; index < 3; index++) ((await take1(breaker)) as BreakerPermit).failure(timeout);
    await eventually(async () => (await breaker.getState()) === 'open');
    await new Promise((resolve) => setTimeout(resolve, 60));
    ((await take1(breaker)) as BreakerPermit).failure(timeout);
    await eventually(async () => (await breaker.getState()) === 'open');
    expect(await take1(breaker)).toMatchObject({ code: TxErrorCode.CircuitOpen });
  });
});
