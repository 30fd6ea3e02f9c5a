import {
  asyncScheduler,
  defer,
  finalize,
  from,
  map,
  Observable,
  of,
  type SchedulerLike,
  type Subscriber,
  share,
  switchMap,
  throwError,
  timer,
} from 'rxjs';
import { z } from 'zod';
import { type TxCall, txCallOf, withCallMeta } from '../src/call.js';
import { isTxError, TxError, TxErrorCode } from '../src/errors.js';
import { fingerprint, scopedKey } from '../src/idempotency/fingerprint.js';
import type { BeginOutcome, IdempotencyRecord, IdempotencyStore } from '../src/idempotency/store.js';
import { buildMeta, buildResult, extractData, successOutcome } from '../src/result.js';
import { InProgressOptionsSchema, PositiveMsSchema, parseOrThrow, SchedulerSchema } from '../src/schemas.js';
import { isoTime } from '../src/time.js';
import type { TxMeta, TxResult } from '../src/types.js';

const DedupeOptionsSchema = z.strictObject({
  windowMs: PositiveMsSchema.optional(),
  cacheFailures: z.boolean().default(false),
  ...InProgressOptionsSchema(100),
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link dedupe}, all optional:
 *
 * - `windowMs` (the store's `windowMs`, else 300 000): how long a key's outcome is kept and replayed.
 * - `cacheFailures` (`false`): keep failures too (replayed as the same error, `duplicate: true`);
 *   otherwise a failure releases the key, so that the call may run again.
 * - `inProgressTtlMs` (120 000): how long a key stays held while its call runs, so that a crashed
 *   process does not block it forever.
 * - `inProgress` (`{ waitMs: 30_000, pollMs: 100 }`): how long a call whose key another process holds
 *   waits for it, and how often it looks; then it fails with `MCP_TX_IN_PROGRESS` (retryable).
 * - `scheduler` (`asyncScheduler`): the clock and timers.
 *
 * @example
 * dedupe(store, { windowMs: 3_600_000, inProgress: { waitMs: 5_000, pollMs: 250 } });
 */
export type DedupeOptions = z.input<typeof DedupeOptionsSchema>;
type Settings = z.output<typeof DedupeOptionsSchema> & { windowMs: number; scheduler: SchedulerLike };

const DEFAULT_WINDOW_MS = 300_000;

interface InFlight {
  readonly fingerprint: string;
  readonly execution: Observable<TxResult>;
}

/** Calls running in this process, per store and key, so that separate `dedupe(store)` pipelines share them. */
const inFlightByStore = new WeakMap<IdempotencyStore, Map<string, InFlight>>();

function inFlightOf(store: IdempotencyStore): Map<string, InFlight> {
  let inFlight = inFlightByStore.get(store);
  if (inFlight === undefined) {
    inFlight = new Map();
    inFlightByStore.set(store, inFlight);
  }
  return inFlight;
}

/**
 * Makes a keyed call happen once. For a call with an idempotency key (scoped by tool):
 * a result stored within the window is emitted with `meta.duplicate: true` and the source is not
 * subscribed; a call already running for the key in this process is joined, not repeated; the same
 * key with other arguments fails with `MCP_TX_IDEMPOTENCY_CONFLICT`; a key held by another process
 * is polled until it completes (else `MCP_TX_IN_PROGRESS`, retryable). Only successes are stored,
 * unless `cacheFailures`. A call without a key passes through untouched.
 *
 * Put it outside `retryWithPolicy`, so that the whole retried call is one execution.
 *
 * @example
 * const store = memoryIdempotencyStore();
 * tx.attempt$('charge', { cents: 500 }, { idempotencyKey: 'order-42' })
 *   .pipe(retryWithPolicy(), dedupe(store))
 *   .subscribe(({ meta }) => console.log(meta.duplicate));
 */
export function dedupe(store: IdempotencyStore, options: DedupeOptions = {}) {
  if (typeof (store as Partial<IdempotencyStore> | null)?.begin !== 'function') {
    throw new TxError(TxErrorCode.Validation, 'Invalid store: must be an IdempotencyStore', {
      field: 'store',
    });
  }
  const parsed = parseOrThrow(DedupeOptionsSchema, options, 'options');
  const settings: Settings = {
    ...parsed,
    windowMs: parsed.windowMs ?? store.windowMs ?? DEFAULT_WINDOW_MS,
    scheduler: parsed.scheduler ?? asyncScheduler,
  };
  return (source: Observable<TxResult>): TxCall => {
    const call = txCallOf(source, 'dedupe');
    const idempotencyKey = call.request.idempotencyKey;
    if (idempotencyKey === undefined) return call;
    const keyed: Omit<Keyed, 'startedAtMs'> = {
      call,
      store,
      settings,
      key: scopedKey(call.request.name, idempotencyKey),
      fingerprint: fingerprint(call.request.args),
    };
    return call.derive((subscriber) =>
      subscribeKeyed({ ...keyed, startedAtMs: settings.scheduler.now() }, subscriber),
    );
  };
}

interface Keyed {
  readonly call: TxCall;
  readonly store: IdempotencyStore;
  readonly settings: Settings;
  readonly key: string;
  readonly fingerprint: string;
  /** When this subscription started: a duplicate's `startedAt` and `durationMs` are its own. */
  readonly startedAtMs: number;
}

function subscribeKeyed(keyed: Keyed, subscriber: Subscriber<TxResult>) {
  const inFlight = inFlightOf(keyed.store);
  const running = inFlight.get(keyed.key);
  if (running !== undefined) {
    if (running.fingerprint !== keyed.fingerprint)
      return throwError(() => conflict(keyed)).subscribe(subscriber);
    return running.execution
      .pipe(map((result) => asDuplicate(keyed, result.meta, result)))
      .subscribe(subscriber);
  }
  const execution = defer(() =>
    from(keyed.store.begin(keyed.key, keyed.fingerprint, keyed.settings.inProgressTtlMs)),
  ).pipe(
    switchMap((outcome) =>
      settle(keyed, outcome, keyed.settings.scheduler.now() + keyed.settings.inProgress.waitMs),
    ),
    finalize(() => {
      if (inFlight.get(keyed.key)?.execution === execution) inFlight.delete(keyed.key);
    }),
    share(),
  );
  inFlight.set(keyed.key, { fingerprint: keyed.fingerprint, execution });
  return execution.subscribe(subscriber);
}

/** What to do with the store's answer: run, replay, refuse, or wait for the other holder until `deadline`. */
function settle(keyed: Keyed, outcome: BeginOutcome, deadline: number): Observable<TxResult> {
  switch (outcome.status) {
    case 'new':
      return runAndRecord(keyed);
    case 'completed':
      return replay(keyed, outcome.record);
    case 'conflict':
      return throwError(() => conflict(keyed));
    case 'in_progress': {
      const { scheduler, inProgress, inProgressTtlMs } = keyed.settings;
      if (scheduler.now() + inProgress.pollMs > deadline) return throwError(() => stillInProgress(keyed));
      return timer(inProgress.pollMs, scheduler).pipe(
        switchMap(() => from(keyed.store.begin(keyed.key, keyed.fingerprint, inProgressTtlMs))),
        switchMap((next) => settle(keyed, next, deadline)),
      );
    }
  }
}

/** Runs the source once, stores what it gave, and releases the key if it failed or was abandoned. */
function runAndRecord(keyed: Keyed): Observable<TxResult> {
  const { call, store, key, settings } = keyed;
  return new Observable<TxResult>((subscriber) => {
    let last: TxResult | undefined;
    let finished = false;
    const settleEmpty = () => subscriber.complete();
    const inner = call.subscribe({
      next: (result) => {
        last = result;
      },
      error: (error: unknown) => {
        finished = true;
        const stored =
          settings.cacheFailures && isTxError(error)
            ? store.complete(key, keyed.fingerprint, failureRecord(error), settings.windowMs)
            : store.release(key);
        stored.then(
          () => subscriber.error(error),
          () => subscriber.error(error),
        );
      },
      complete: () => {
        finished = true;
        const result = last;
        if (result === undefined) {
          store.release(key).then(settleEmpty, settleEmpty);
          return;
        }
        // The tool ran: its result reaches the caller even if the store cannot keep it.
        const emit = () => {
          subscriber.next(result);
          subscriber.complete();
        };
        store.complete(key, keyed.fingerprint, resultRecord(result), settings.windowMs).then(emit, emit);
      },
    });
    return () => {
      inner.unsubscribe();
      if (!finished) store.release(key).catch(() => undefined);
    };
  });
}

function replay(keyed: Keyed, record: IdempotencyRecord): Observable<TxResult> {
  if (record.kind === 'result') {
    // A record a server (txTool) wrote into a shared store has no client data or meta: derive them.
    const data = 'data' in record ? record.data : extractData(record.result);
    return of(asDuplicate(keyed, record.meta ?? successMetaOf(keyed), { result: record.result, data }));
  }
  const code = Object.values(TxErrorCode).find((known) => known === record.code) ?? TxErrorCode.ToolError;
  const error = new TxError(code, record.message);
  return throwError(() => error.withMeta(duplicateMeta(keyed, record.meta ?? failureMetaOf(keyed, error))));
}

function resultRecord(result: TxResult): IdempotencyRecord {
  return { kind: 'result', result: result.result, data: result.data, meta: result.meta };
}

function failureRecord(error: TxError): IdempotencyRecord {
  const record = { kind: 'failure' as const, code: error.code, message: error.message };
  return error.meta === undefined ? record : { ...record, meta: error.meta };
}

/** A stored or shared outcome, as this call's own: its request id, no attempts of its own, `duplicate: true`. */
function asDuplicate(keyed: Keyed, meta: TxMeta, stored: Pick<TxResult, 'result' | 'data'>): TxResult {
  return buildResult(stored.result, stored.data, duplicateMeta(keyed, meta));
}

function duplicateMeta(keyed: Keyed, meta: TxMeta): TxMeta {
  const { request } = keyed.call;
  const { startedAtMs } = keyed;
  const nowMs = keyed.settings.scheduler.now();
  return Object.freeze({
    ...meta,
    requestId: request.requestId,
    transactionId: request.transactionId,
    correlationId: request.correlationId,
    attempts: 0,
    duplicate: true,
    startedAt: isoTime(startedAtMs),
    durationMs: Math.max(0, nowMs - startedAtMs),
  });
}

function successMetaOf(keyed: Keyed): TxMeta {
  const { call } = keyed;
  const nowMs = keyed.settings.scheduler.now();
  const timing = { attempts: 0, startedAt: isoTime(nowMs), startedAtMs: nowMs, nowMs };
  return buildMeta(call.request, timing, successOutcome(undefined, call.env.serverSupportsTx()));
}

function failureMetaOf(keyed: Keyed, error: TxError): TxMeta {
  return (withCallMeta(keyed.call, error) as TxError).meta as TxMeta;
}

function conflict(keyed: Keyed): TxError {
  const { name, idempotencyKey } = keyed.call.request;
  const error = new TxError(
    TxErrorCode.IdempotencyConflict,
    `Idempotency key "${idempotencyKey}" was already used for ${name} with other arguments`,
  );
  return withCallMeta(keyed.call, error) as TxError;
}

function stillInProgress(keyed: Keyed): TxError {
  const { name, idempotencyKey } = keyed.call.request;
  const error = new TxError(
    TxErrorCode.InProgress,
    `A call of ${name} with idempotency key "${idempotencyKey}" is still in progress elsewhere ` +
      `(waited ${keyed.settings.inProgress.waitMs} ms)`,
    { retryable: true },
  );
  return withCallMeta(keyed.call, error) as TxError;
}
