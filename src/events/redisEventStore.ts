import type { Redis } from 'ioredis';
import { defer, Observable, switchMap } from 'rxjs';
import * as z from 'zod';
import { MAX_TIMEOUT_MS, parseOrThrow, TimeoutMsSchema } from '../config/validators.js';
import { validationError } from '../core/errors.js';
import { storeUnavailable, withinDeadline } from '../core/storeDeadline.js';
import {
  type EventFilter,
  type EventStore,
  matchesFilter,
  type NewTxEvent,
  replayLog,
  stampEvent,
  type TxEvent,
} from './eventStore.js';

const RedisEventStoreOptionsSchema = z.strictObject({
  stream: z.string().min(1, 'must not be empty'),
  blockMs: TimeoutMsSchema.default(1_000),
  commandTimeoutMs: TimeoutMsSchema.default(2_000),
});

/**
 * Options of {@link RedisEventStore}:
 *
 * - `stream` (required): the Redis Stream key the events go to.
 * - `blockMs` (1000): how long one blocking read of `live$` waits before asking again.
 * - `commandTimeoutMs` (2000): how long an `append`, a `read$` or the start of a `live$` may wait
 *   for Redis before failing with `MCP_TX_STORE_UNAVAILABLE` (a blocking read of `live$` may take
 *   `blockMs` more), whatever the client's own retry and offline-queue settings.
 *
 * @example
 * const events = new RedisEventStore(redis, { stream: 'shop:events', blockMs: 5_000, commandTimeoutMs: 500 });
 */
export type RedisEventStoreOptions = z.input<typeof RedisEventStoreOptionsSchema>;

/** The stream entry field that holds the event as JSON. */
const FIELD = 'event';

/** A stream id lower than any entry's: reading after it gets the stream from its first entry. */
const BEFORE_ANY_ENTRY = '0-0';

type StreamEntries = Array<[id: string, fields: string[]]>;

/**
 * An {@link EventStore} on a Redis Stream that many processes append to and read: `append` is one
 * XADD; `read$` replays the stream in order; `live$` follows it, emitting the events appended after
 * the subscription (blocking XREADs on its own connection, closed on unsubscribe). Redis errors,
 * and a Redis that does not answer within `commandTimeoutMs`, surface as `MCP_TX_STORE_UNAVAILABLE`
 * (retryable).
 *
 * @example
 * const events = new RedisEventStore(new Redis(process.env.REDIS_URL), { stream: 'shop:events' });
 * events.live$({ type: 'ToolCallFailed' }).subscribe((event) => alert(event));
 */
export class RedisEventStore implements EventStore {
  private readonly settings: z.output<typeof RedisEventStoreOptionsSchema>;

  constructor(
    private readonly redis: Redis,
    options: RedisEventStoreOptions,
  ) {
    if (typeof (redis as Partial<Redis> | null)?.xadd !== 'function') {
      throw validationError('redis', 'must be an ioredis client');
    }
    this.settings = parseOrThrow(RedisEventStoreOptionsSchema, options, 'options');
  }

  /** Appends `event` to the stream (one XADD); Redis errors reject with `MCP_TX_STORE_UNAVAILABLE`. */
  async append(event: NewTxEvent): Promise<TxEvent> {
    const stored = stampEvent(event);
    await this.guard(this.redis.xadd(this.settings.stream, '*', FIELD, JSON.stringify(stored)));
    return stored;
  }

  /**
   * Replays the stream in order: one XRANGE when subscribed, a new one on each subscription (so a
   * `retry()` reads again); Redis errors: `MCP_TX_STORE_UNAVAILABLE`.
   */
  read$(eventFilter?: EventFilter): Observable<TxEvent> {
    return defer(() => this.guard(this.redis.xrange(this.settings.stream, '-', '+'))).pipe(
      switchMap((entries) => replayLog(toEvents(entries), eventFilter)),
    );
  }

  /**
   * The events appended from now on, as they come (type, transaction, request and tool filters apply).
   * "Now" is the stream's last entry when subscribed, read at once on this store's connection (so an
   * `append` made on it after subscribing is always seen); each blocking read then asks for what comes
   * after the last entry seen, so nothing appended between two reads is missed. A stream that does
   * not exist yet is followed from its first entry. The reader connection is a duplicate of this
   * store's without its `commandTimeout` (which would cut a blocking read short); a read that has not
   * answered within `blockMs + commandTimeoutMs` errors with `MCP_TX_STORE_UNAVAILABLE`.
   */
  live$(eventFilter?: EventFilter): Observable<TxEvent> {
    return new Observable<TxEvent>((subscriber) => {
      const { stream, blockMs, commandTimeoutMs } = this.settings;
      const subscribedAt = this.guard(this.lastEntryId());
      const reader = this.redis.duplicate({ commandTimeout: undefined });
      reader.on('error', () => undefined); // reported through the failed read below
      let closed = false;
      const follow = async () => {
        let cursor = await subscribedAt;
        while (!closed) {
          const answer = (await withinDeadline(
            reader.xread('BLOCK', blockMs, 'STREAMS', stream, cursor),
            Math.min(blockMs + commandTimeoutMs, MAX_TIMEOUT_MS),
            'Event store',
          )) as Array<[string, StreamEntries]> | null;
          for (const [, entries] of answer ?? []) {
            for (const event of toEvents(entries))
              if (matchesFilter(event, eventFilter)) subscriber.next(event);
            cursor = entries.at(-1)?.[0] ?? cursor;
          }
        }
      };
      follow().catch((error: unknown) => {
        if (!closed) subscriber.error(storeUnavailable('Event store', error));
      });
      return () => {
        closed = true;
        reader.disconnect();
      };
    });
  }

  /** The id of the stream's last entry, or `0-0` (before any id) when it is empty or does not exist. */
  private async lastEntryId(): Promise<string> {
    const [last] = await this.redis.xrevrange(this.settings.stream, '+', '-', 'COUNT', 1);
    return last?.[0] ?? BEFORE_ANY_ENTRY;
  }

  /** `operation`, failing with `MCP_TX_STORE_UNAVAILABLE` if Redis fails or takes over `commandTimeoutMs`. */
  private guard<T>(operation: Promise<T>): Promise<T> {
    return withinDeadline(operation, this.settings.commandTimeoutMs, 'Event store');
  }
}

function toEvents(entries: StreamEntries): TxEvent[] {
  return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf(FIELD) + 1] as string) as TxEvent);
}
