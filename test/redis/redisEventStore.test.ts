import { Redis } from 'ioredis';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/ids.js';
import { RedisEventStore, TxErrorCode } from '../../src/index.js';
import { unreachableRedis } from '../support/redis.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const stream = `mcp-tx-test:${newRequestId()}:events`;

afterAll(async () => {
  await redis.del(stream);
  redis.disconnect();
});

describe('RedisEventStore on a real Redis stream', () => {
  it('replays appended events in order, filtered, from after an event', async () => {
    const store = new RedisEventStore(redis, { stream });
    const first = await store.append({ type: 'A', transactionId: 't1' });
    await store.append({ type: 'B', transactionId: 't1', data: { n: 2 } });
    await store.append({ type: 'A', transactionId: 't2' });
    const replay = (filter?: Parameters<RedisEventStore['read$']>[0]) =>
      lastValueFrom(store.read$(filter).pipe(toArray()));
    expect((await replay()).map((event) => event.type)).toEqual(['A', 'B', 'A']);
    expect((await replay({ transactionId: 't1' })).map((event) => event.type)).toEqual(['A', 'B']);
    expect((await replay({ afterId: first.id })).map((event) => event.transactionId)).toEqual(['t1', 't2']);
  });

  it('follows the stream live: a subscriber sees what another connection appends after it subscribed', async () => {
    const reader = new RedisEventStore(redis, { stream, blockMs: 100 });
    const writerConnection = redis.duplicate();
    const writer = new RedisEventStore(writerConnection, { stream });
    const seen = lastValueFrom(reader.live$({ type: 'Live' }).pipe(take(2), toArray()));
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the blocking read start at the stream's end
    await writer.append({ type: 'Skipped' });
    await writer.append({ type: 'Live', data: { n: 1 } });
    await writer.append({ type: 'Live', data: { n: 2 } });
    expect((await seen).map((event) => event.data?.n)).toEqual([1, 2]);
    writerConnection.disconnect();
  });

  it('surfaces a Redis failure as MCP_TX_STORE_UNAVAILABLE', async () => {
    const down = unreachableRedis();
    const store = new RedisEventStore(down, { stream });
    await expect(store.append({ type: 'X' })).rejects.toMatchObject({ code: TxErrorCode.StoreUnavailable });
    await expect(firstValueFrom(store.read$())).rejects.toMatchObject({ code: TxErrorCode.StoreUnavailable });
    down.disconnect();
  });
});
