import { filter, from, type Observable } from 'rxjs';
import * as z from 'zod';
import { newRequestId } from '../core/ids.js';

/**
 * One event in a log: what happened, when, and to which call or transaction. Frozen.
 *
 * @example
 * const event: TxEvent = await events.append({ type: 'ToolCallRequested', requestId, tool: 'charge' });
 * console.log(event.id, event.at);
 */
export interface TxEvent {
  /** A uuid v7: unique, time-ordered to the millisecond (the log's own order is exact). */
  readonly id: string;
  /** What happened, e.g. `ToolCallCompleted` (the `record` operator) or `SagaStepCompleted` (`Saga`). */
  readonly type: string;
  /** ISO 8601. */
  readonly at: string;
  readonly requestId?: string;
  readonly transactionId?: string;
  readonly tool?: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

/**
 * The zod schema of a stored {@link TxEvent}, as a log read back must hold it: a JSON object with
 * an `id`, a non-empty `type` and an `at` (strings), optional `requestId` / `transactionId` / `tool`
 * strings and an optional `data` object. Other fields are kept (a newer writer may add some).
 *
 * @example
 * TxEventSchema.safeParse(JSON.parse(line)).success; // false for `42`, `[]`, `null`, `{"type":""}`
 */
export const TxEventSchema = z.looseObject(
  {
    id: z.string({ error: 'must be a string' }),
    type: z.string({ error: 'must be a string' }).min(1, 'must not be empty'),
    at: z.string({ error: 'must be a string' }),
    requestId: z.string({ error: 'must be a string' }).optional(),
    transactionId: z.string({ error: 'must be a string' }).optional(),
    tool: z.string({ error: 'must be a string' }).optional(),
    data: z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).optional(),
  },
  { error: 'must be a JSON object with id, type and at' },
);

/**
 * What `append` takes: the store gives the event its id and time.
 *
 * @example
 * const event: NewTxEvent = { type: 'OrderShipped', transactionId: 'order-42', data: { carrier: 'ups' } };
 * await events.append(event);
 */
export type NewTxEvent = Omit<TxEvent, 'id' | 'at'>;

/**
 * Which events `read$` replays; every field given must match.
 *
 * @example
 * events.read$({ type: ['ToolCallCompleted', 'ToolCallFailed'], tool: 'charge', afterId: lastSeenId });
 */
export interface EventFilter {
  /** One type, or any of several. */
  readonly type?: string | readonly string[];
  readonly transactionId?: string;
  readonly requestId?: string;
  readonly tool?: string;
  /** Only events after the event with this id, in log order (all of them if it is not in the log). */
  readonly afterId?: string;
}

/**
 * An append-only event log: in memory, a JSONL file (the embedded durable default) or a shared one
 * (Redis Streams). `append` resolves once the event is stored; `read$` replays what is stored, in
 * order, and completes.
 *
 * @example
 * await store.append({ type: 'OrderPlaced', transactionId: 'order-42', data: { total: 500 } });
 * store.read$({ transactionId: 'order-42' }).subscribe((event) => console.log(event.type));
 */
export interface EventStore {
  /** Stores `event` with a new id and the time; resolves with the stored event, rejects if it cannot. */
  append(event: NewTxEvent): Promise<TxEvent>;
  /** Replays the stored events that pass `filter` (all when none), in the order appended, then completes. */
  read$(filter?: EventFilter): Observable<TxEvent>;
}

/** Gives a new event its id and time. */
export function stampEvent(event: NewTxEvent): TxEvent {
  return Object.freeze({ ...event, id: newRequestId(), at: new Date().toISOString() });
}

/**
 * Does `event` pass `filter`'s type, transaction, request and tool (not its position)?
 *
 * @example
 * matchesFilter(event, { type: ['ToolCallCompleted', 'ToolCallFailed'], tool: 'charge' });
 */
export function matchesFilter(event: TxEvent, eventFilter: EventFilter = {}): boolean {
  const { type, transactionId, requestId, tool } = eventFilter;
  if (type !== undefined && !(typeof type === 'string' ? type === event.type : type.includes(event.type)))
    return false;
  if (transactionId !== undefined && event.transactionId !== transactionId) return false;
  if (requestId !== undefined && event.requestId !== requestId) return false;
  return tool === undefined || event.tool === tool;
}

/**
 * Replays a log snapshot through `filter`: the events after `afterId` (by position), then those
 * that match the other fields.
 *
 * @example
 * replayLog(events, { afterId: lastSeen.id, type: 'ToolCallFailed' }).subscribe(console.log);
 */
export function replayLog(events: readonly TxEvent[], eventFilter: EventFilter = {}): Observable<TxEvent> {
  const { afterId } = eventFilter;
  const start = afterId === undefined ? 0 : events.findIndex((event) => event.id === afterId) + 1;
  return from(events.slice(start)).pipe(filter((event) => matchesFilter(event, eventFilter)));
}

/**
 * An in-memory {@link EventStore}: for tests and for processes whose log may die with them.
 *
 * @example
 * const events = new MemoryEventStore();
 * tx.attempt$('charge', args).pipe(record(events));
 */
export class MemoryEventStore implements EventStore {
  private readonly events: TxEvent[] = [];

  /** Adds `event` to the in-memory log. */
  async append(event: NewTxEvent): Promise<TxEvent> {
    const stored = stampEvent(event);
    this.events.push(stored);
    return stored;
  }

  /** Replays the events stored when `read$` is called (a snapshot: later appends are not seen). */
  read$(eventFilter?: EventFilter): Observable<TxEvent> {
    return replayLog([...this.events], eventFilter);
  }
}
