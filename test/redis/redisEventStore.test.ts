import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { firstValueFrom, from, lastValueFrom, retry, take, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/core/ids.js';
import { type EventFilter, TxErrorCode, type TxEvent } from '../../src/index.js';
import { RedisEventStore } from '../../src/redis.js';
import { eventually, until } from '../support/fixture.js';
import { redisUrl, testRedis, unreachableRedis } from '../support/redis.js';

const { redis, prefix } = testRedis();
const stream = `${prefix}events`;

/** Closes the connections the tests open besides `redis`, after them. */
const closers: Array<() => void> = [];
afterAll(() => {
  for (const close of closers) close();
});

/** A store on a connection of its own, named so that its `live$` readers (duplicates, same name) can be found. */
function namedStore(key: string, blockMs?: number, connectionOptions: RedisOptions = {}) {
  const connection = new Redis(redisUrl, {
    ...connectionOptions,
    connectionName: `mcp-tx-test-${newRequestId()}`,
  });
  closers.push(() => connection.disconnect());
  const clients = async () =>
    ((await connection.client('LIST')) as string)
      .split('\n')
      .filter((line) => line.includes(` name=${connection.options.connectionName} `));
  return {
    store: new RedisEventStore(connection, { stream: key, blockMs }),
    /** How many of its `live$` readers (duplicates, same name) have issued their blocking XREAD. */
    readers: async () => (await clients()).filter((line) => line.includes(' cmd=xread ')).length,
    /** How many connections it has open, its own included. */
    connections: async () => (await clients()).length,
    /** The address (`host:port`) of its `live$` reader that is in a blocking read. */
    address: async () =>
      /addr=(\S+)/.exec((await clients()).find((line) => line.includes(' cmd=xread ')) ?? '')?.[1] ?? '',
  };
}

/**
 * Watches Redis (MONITOR, on a socket of its own closed after the file's tests): the cursor of every
 * XREAD sent from an address (the id after which it asked), in order. A plain socket, as ioredis's
 * `monitor()` throws when the first lines come in the same packet as its OK (other clients busy).
 */
async function xreadCursors(): Promise<(address: string) => string[]> {
  const { hostname, port, username, password } = new URL(redisUrl);
  const monitor = connect(Number(port || 6379), hostname).setEncoding('utf8');
  closers.push(() => monitor.destroy());
  const sent = new Map<string, string[]>();
  let oks = 0;
  let unfinished = '';
  monitor.on('data', (chunk: string) => {
    const lines = (unfinished + chunk).split('\r\n');
    unfinished = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '+OK') oks += 1;
      // +1732000000.123456 [0 127.0.0.1:51234] "xread" "BLOCK" "10" "STREAMS" "key" "0-0"
      const source = /^\+[\d.]+ \[\d+ (\S+)\]/.exec(line)?.[1];
      const args = Array.from(line.matchAll(/"((?:[^"\\]|\\.)*)"/g), (match) => match[1] as string);
      if (source === undefined || args[0]?.toLowerCase() !== 'xread') continue;
      sent.set(source, [...(sent.get(source) ?? []), args.at(-1) as string]);
    }
  });
  const commands = password ? [`AUTH ${username || 'default'} ${decodeURIComponent(password)}`] : [];
  monitor.write([...commands, 'MONITOR', ''].join('\r\n'));
  await until(() => oks === commands.length + 1); // MONITOR answered: watching from now on
  return (address) => sent.get(address) ?? [];
}

/** Follows `store.live$(filter)` into `seen`; an error fails the waits below. */
function follow(store: RedisEventStore, filter?: EventFilter) {
  const seen: TxEvent[] = [];
  let failure: unknown;
  const subscription = store.live$(filter).subscribe({
    next: (event) => seen.push(event),
    error: (error: unknown) => {
      failure = error;
    },
  });
  /** Waits until the event of type `type` arrived (so did everything appended before it). */
  const arrived = (type: string) =>
    until(() => {
      if (failure !== undefined) throw failure;
      return seen.some((event) => event.type === type);
    }, 5_000);
  return { seen, arrived, stop: () => subscription.unsubscribe() };
}

/** A TCP server on 127.0.0.1 that accepts connections and never answers: a stalled Redis. */
async function silentServer() {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => sockets.add(socket)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

const numbered = (events: TxEvent[]) => events.map((event) => event.data?.n ?? event.type);
const range = (count: number, from = 0) => Array.from({ length: count }, (_, index) => from + index);

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
    const { store: reader, readers } = namedStore(stream, 100);
    const writerConnection = redis.duplicate();
    const writer = new RedisEventStore(writerConnection, { stream });
    const seen = lastValueFrom(reader.live$({ type: 'Live' }).pipe(take(2), toArray()));
    await eventually(async () => (await readers()) === 1); // the blocking read has started
    await writer.append({ type: 'Skipped' });
    await writer.append({ type: 'Live', data: { n: 1 } });
    await writer.append({ type: 'Live', data: { n: 2 } });
    expect((await seen).map((event) => event.data?.n)).toEqual([1, 2]);
    writerConnection.disconnect();
  });

  it('delivers, in order and once, the events appended right after subscribing, before its reader connected', async () => {
    const key = `${prefix}early`;
    const { store, readers } = namedStore(key);
    await store.append({ type: 'Before' }); // already there: not part of the live events
    const live = follow(store);
    const appended = Promise.all(range(50).map((n) => store.append({ type: 'Early', data: { n } })));
    expect(await readers()).toBe(0); // asked on the store's connection after the appends: no XREAD yet
    await appended;
    await store.append({ type: 'End' });
    await live.arrived('End');
    expect(numbered(live.seen)).toEqual([...range(50), 'End']);
    live.stop();
  });

  it('misses nothing appended between blocking reads that timed out empty, and never asks for `$`', async () => {
    const key = `${prefix}between-reads`;
    const { store, readers, address } = namedStore(key, 10);
    const cursors = await xreadCursors();
    const live = follow(store);
    await eventually(async () => (await readers()) === 1);
    const reader = await address();
    /** Waits until the reader has sent two more XREADs with nothing appended: the first one timed out empty. */
    const readTimedOut = async () => {
      const asked = cursors(reader).length;
      await eventually(async () => cursors(reader).length >= asked + 2);
    };
    await readTimedOut();
    await store.append({ type: 'Lone', data: { n: 0 } });
    await live.arrived('Lone');
    for (const round of range(3)) {
      await readTimedOut();
      for (const n of range(50, 1 + round * 50)) await store.append({ type: 'Burst', data: { n } });
    }
    await store.append({ type: 'End' });
    await live.arrived('End');
    expect(numbered(live.seen)).toEqual([...range(151), 'End']);
    expect(cursors(reader)).not.toContain('$');
    live.stop();
  });

  it('follows a stream that does not exist yet from its first entry, appended from another connection', async () => {
    const key = `${prefix}created-later`;
    const { store, readers } = namedStore(key, 20);
    const writerConnection = redis.duplicate();
    const writer = new RedisEventStore(writerConnection, { stream: key });
    const live = follow(store);
    await eventually(async () => (await readers()) === 1);
    expect(await redis.exists(key)).toBe(0);
    for (const n of range(10)) await writer.append({ type: 'Created', data: { n } });
    await writer.append({ type: 'End' });
    await live.arrived('End');
    expect(numbered(live.seen)).toEqual([...range(10), 'End']);
    live.stop();
    writerConnection.disconnect();
  });

  it('closes its reader connections on unsubscribe, also before they connected', async () => {
    const { store, readers, connections } = namedStore(`${prefix}closing`, 20);
    const following = range(3).map(() => follow(store));
    await eventually(async () => (await readers()) === 3);
    for (const live of following) live.stop();
    for (const _ of range(3)) follow(store).stop(); // unsubscribed at once
    await eventually(async () => (await connections()) === 1); // only the store's own connection
  });

  it('reads when subscribed, afresh each time: a replay built before an append sees it, a retry reads again', async () => {
    const key = `${prefix}cold`;
    const store = new RedisEventStore(redis, { stream: key });
    const builtFirst = store.read$();
    await store.append({ type: 'Appended' });
    expect((await lastValueFrom(builtFirst.pipe(toArray()))).map((event) => event.type)).toEqual([
      'Appended',
    ]);

    // A client not connected yet fails its first command at once (no offline queue), then connects.
    const connecting = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false });
    closers.push(() => connecting.disconnect());
    const failures: unknown[] = [];
    const replayed = await lastValueFrom(
      new RedisEventStore(connecting, { stream: key }).read$().pipe(
        retry({
          count: 1,
          delay: (error: unknown) => {
            failures.push(error);
            return from(once(connecting, 'ready'));
          },
        }),
        toArray(),
      ),
    );
    expect(failures).toEqual([expect.objectContaining({ code: TxErrorCode.StoreUnavailable })]);
    expect(replayed.map((event) => event.type)).toEqual(['Appended']);
  });

  it('asks Redis nothing for a read$ never subscribed: no unhandled rejection while Redis is down', async () => {
    const down = unreachableRedis();
    const unhandled: unknown[] = [];
    const noteUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', noteUnhandled);
    new RedisEventStore(down, { stream }).read$();
    await new Promise((resolve) => setImmediate(resolve)); // past the point where Node reports one
    process.off('unhandledRejection', noteUnhandled);
    expect(unhandled).toEqual([]);
    expect(down.status).toBe('wait'); // never asked to connect
    down.disconnect();
  });

  it('fails append, read$ and live$ with MCP_TX_STORE_UNAVAILABLE within commandTimeoutMs when Redis does not answer', async () => {
    const stalledServer = await silentServer();
    const stalled = new Redis(stalledServer.port, '127.0.0.1'); // connects, then waits forever for replies
    const store = new RedisEventStore(stalled, { stream, commandTimeoutMs: 100 });
    const unanswered = expect.objectContaining({
      code: TxErrorCode.StoreUnavailable,
      retryable: true,
      message: 'Event store did not answer within 100 ms',
    });
    await expect(store.append({ type: 'X' })).rejects.toEqual(unanswered);
    await expect(firstValueFrom(store.read$())).rejects.toEqual(unanswered);
    await expect(firstValueFrom(store.live$())).rejects.toEqual(unanswered);
    stalled.disconnect();
    stalledServer.close();
  });

  it('keeps following when the client has a commandTimeout shorter than blockMs', async () => {
    const key = `${prefix}command-timeout`;
    const { store, readers, address } = namedStore(key, 300, { commandTimeout: 100 });
    const cursors = await xreadCursors();
    const live = follow(store);
    await eventually(async () => (await readers()) === 1);
    const reader = await address();
    await eventually(async () => cursors(reader).length >= 2); // the first 300 ms read ended, empty and unharmed
    await store.append({ type: 'End' });
    await live.arrived('End');
    expect(numbered(live.seen)).toEqual(['End']);
    live.stop();
  });

  it('names a bad commandTimeoutMs', () => {
    expect(() => new RedisEventStore(redis, { stream, commandTimeoutMs: 0 })).toThrow(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'options.commandTimeoutMs' }),
    );
  });

  it('surfaces a Redis failure as MCP_TX_STORE_UNAVAILABLE', async () => {
    const down = unreachableRedis();
    const store = new RedisEventStore(down, { stream });
    await expect(store.append({ type: 'X' })).rejects.toMatchObject({ code: TxErrorCode.StoreUnavailable });
    await expect(firstValueFrom(store.read$())).rejects.toMatchObject({ code: TxErrorCode.StoreUnavailable });
    await expect(firstValueFrom(store.live$())).rejects.toMatchObject({ code: TxErrorCode.StoreUnavailable });
    down.disconnect();
  });
});
