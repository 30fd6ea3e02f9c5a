import {
  asyncScheduler,
  catchError,
  map,
  noop,
  Observable,
  of,
  raceWith,
  type SchedulerLike,
  share,
  switchMap,
  tap,
  throwError,
  timer,
} from 'rxjs';
import { z } from 'zod';
import { type TxCall, withCallMeta } from '../src/call/call.js';
import { buildMeta, buildResult, extractData, successOutcome } from '../src/call/result.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import {
  InProgressOptionsSchema,
  PositiveMsSchema,
  parseOrThrow,
  SchedulerSchema,
} from '../src/config/validators.js';
import { isTxError, isTxErrorCode, saysNothingFinal, TxError, TxErrorCode } from '../src/core/errors.js';
import { isoTime } from '../src/core/time.js';
import type { TxMeta, TxResult } from '../src/core/types.js';
import { fingerprint, scopedKey } from '../src/idempotency/fingerprint.js';
import type { BeginOutcome, IdempotencyRecord, IdempotencyStore } from '../src/idempotency/store.js';

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
 * - `cacheFailures` (`false`): keep definite failures too, replayed as the same error with
 *   `duplicate: true`: those neither retryable nor ambiguous, and not a cancellation, timeout, network
 *   error, open circuit, rate limit, key in progress or unavailable store. Any other failure releases
 *   the key, so that the call may run again.
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
 * subscribed; a call already running for the key in this process is joined, not repeated (if its
 * caller cancels it, the calls that joined start over on the key); the same key with other arguments
 * fails with `MCP_TX_IDEMPOTENCY_CONFLICT`; a key held by another process is polled until it
 * completes (else `MCP_TX_IN_PROGRESS`, retryable). Only successes are stored, unless
 * `cacheFailures` (then definite failures too). A call without a key passes through untouched.
 *
 * Put it outside `retryWithPolicy`, so that the whole retried call is one execution.
 *
 * @example
 * const store = memoryIdempotencyStore();
 * tx.attempt$('charge', { cents: 500 }, { idempotencyKey: 'order-42' })
 *   .pipe(retryWithPolicy(), dedupe(store))
 *   .subscribe(({ meta }) => console.log(meta.duplicate));
 */
export function dedupe(store: IdempotencyStore, options: DedupeOptions = {}): TxOperator {
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
  return txOperator('dedupe', (call) => {
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
      once({ ...keyed, startedAtMs: settings.scheduler.now() }).subscribe(subscriber),
    );
  });
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

/**
 * The keyed call's outcome: the key's execution running in this process, joined, else a new one.
 * Beside one with other arguments, the store decides (that one may not hold the key: it may be
 * about to be refused itself).
 */
function once(keyed: Keyed): Observable<TxResult> {
  const running = inFlightOf(keyed.store).get(keyed.key);
  if (running === undefined) return execute(keyed);
  if (running.fingerprint !== keyed.fingerprint) return askStore(keyed);
  return join(keyed, running.execution);
}

/** Takes the key from the store and runs, replays, refuses or waits, as its answer says. */
function askStore(keyed: Keyed): Observable<TxResult> {
  const { scheduler, inProgress } = keyed.settings;
  return begin(keyed).pipe(
    switchMap((outcome) => settle(keyed, outcome, scheduler.now() + inProgress.waitMs)),
  );
}

/** Starts the key's execution, shared with the calls that join it while it runs. */
function execute(keyed: Keyed): Observable<TxResult> {
  const inFlight = inFlightOf(keyed.store);
  const forget = () => {
    if (inFlight.get(keyed.key)?.execution === execution) inFlight.delete(keyed.key);
  };
  const execution: Observable<TxResult> = askStore(keyed).pipe(
    // Forgotten before its outcome reaches the callers: one that calls again, or starts over, must not join it.
    tap({ next: forget, error: forget, complete: forget, unsubscribe: forget }),
    share(),
  );
  inFlight.set(keyed.key, { fingerprint: keyed.fingerprint, execution });
  return execution;
}

/**
 * Another call's execution, as this call's own duplicate. If that call's caller cancelled it
 * (its `AbortSignal`), this call, which cancelled nothing, starts over on the key; if this call's
 * own signal aborts while it waits, it alone fails `MCP_TX_CANCELLED` (the execution goes on).
 */
function join(keyed: Keyed, execution: Observable<TxResult>): Observable<TxResult> {
  const joined = execution.pipe(
    map((result) => asDuplicate(keyed, result.meta, result)),
    catchError((error: unknown) =>
      cancelledByAnother(keyed, error) ? once(keyed) : throwError(() => asDuplicateFailure(keyed, error)),
    ),
  );
  const { signal } = keyed.call.request.options;
  return signal === undefined ? joined : joined.pipe(raceWith(abortedWhileJoined(keyed, signal)));
}

/** Errors `MCP_TX_CANCELLED` when `signal` aborts (at once if it already has); never emits. */
function abortedWhileJoined(keyed: Keyed, signal: AbortSignal): Observable<never> {
  return new Observable<never>((subscriber) => {
    const onAbort = () => {
      const error = new TxError(
        TxErrorCode.Cancelled,
        'The call was cancelled while it waited for another call with its key',
      );
      subscriber.error(withCallMeta(keyed.call, error));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  });
}

/** A cancellation of another request's execution, while this call's own signal has not aborted. */
function cancelledByAnother(keyed: Keyed, error: unknown): boolean {
  const { request } = keyed.call;
  return (
    isTxError(error, TxErrorCode.Cancelled) &&
    error.meta?.requestId !== request.requestId &&
    request.options.signal?.aborted !== true
  );
}

/** The store's answer for the key. A key it gives (`new`) after the caller has gone is released at once. */
function begin(keyed: Keyed): Observable<BeginOutcome> {
  const { store, key, fingerprint, settings } = keyed;
  return new Observable<BeginOutcome>((subscriber) => {
    store.begin(key, fingerprint, settings.inProgressTtlMs).then(
      (outcome) => {
        if (!subscriber.closed) {
          subscriber.next(outcome);
          subscriber.complete();
        } else if (outcome.status === 'new') store.release(key, outcome.token).catch(noop);
      },
      (error: unknown) => subscriber.error(error),
    );
  });
}

/** What to do with the store's answer: run, replay, refuse, or wait for the other holder until `deadline`. */
function settle(keyed: Keyed, outcome: BeginOutcome, deadline: number): Observable<TxResult> {
  switch (outcome.status) {
    case 'new':
      return runAndRecord(keyed, outcome.token);
    case 'completed':
      return replay(keyed, outcome.record);
    case 'conflict':
      return throwError(() => conflict(keyed));
    case 'in_progress': {
      const { scheduler, inProgress } = keyed.settings;
      if (scheduler.now() + inProgress.pollMs > deadline) return throwError(() => stillInProgress(keyed));
      return timer(inProgress.pollMs, scheduler).pipe(
        switchMap(() => begin(keyed)),
        switchMap((next) => settle(keyed, next, deadline)),
      );
    }
  }
}

/**
 * Runs the source once, holding the key (`token` names the hold), and stores what it gave; releases
 * the key if the source failed (unless the failure is kept), completed empty, or was abandoned.
 */
function runAndRecord(keyed: Keyed, token: string | undefined): Observable<TxResult> {
  return new Observable<TxResult>((subscriber) => {
    let last: TxResult | undefined;
    let finished = false;
    const afterStoring = (storing: Promise<void>, end: () => void) => {
      finished = true;
      storing.then(end, end);
    };
    const inner = keyed.call.subscribe({
      next: (result) => {
        last = result;
      },
      error: (error: unknown) =>
        afterStoring(recordFailure(keyed, token, error), () => subscriber.error(error)),
      // The tool ran: its result reaches the caller even if the store cannot keep it.
      complete: () =>
        afterStoring(recordResult(keyed, token, last), () => {
          if (last !== undefined) subscriber.next(last);
          subscriber.complete();
        }),
    });
    return () => {
      inner.unsubscribe();
      if (!finished) keyed.store.release(keyed.key, token).catch(noop);
    };
  });
}

/** Keeps the result under the key; a source that completed without one releases the key. */
function recordResult(keyed: Keyed, token: string | undefined, result: TxResult | undefined): Promise<void> {
  const { store, key, settings } = keyed;
  if (result === undefined) return store.release(key, token);
  return store.complete(key, keyed.fingerprint, resultRecord(result), settings.windowMs);
}

/** Keeps a definite failure when failures are cached; any other failure releases the key. */
function recordFailure(keyed: Keyed, token: string | undefined, error: unknown): Promise<void> {
  const { store, key, settings } = keyed;
  if (!settings.cacheFailures || !isDefiniteFailure(error)) return store.release(key, token);
  return store.complete(key, keyed.fingerprint, failureRecord(error), settings.windowMs);
}

/** A failure a repeat of the call would meet again (see {@link saysNothingFinal}). */
function isDefiniteFailure(error: unknown): error is TxError {
  return isTxError(error) && !saysNothingFinal(error);
}

function replay(keyed: Keyed, record: IdempotencyRecord): Observable<TxResult> {
  if (record.kind === 'result') {
    // dedupe always stores `data` and `meta`, but they are optional in a record (another writer may leave them out).
    const data = 'data' in record ? record.data : extractData(record.result);
    return of(asDuplicate(keyed, record.meta ?? successMetaOf(keyed), { result: record.result, data }));
  }
  const code = isTxErrorCode(record.code) ? record.code : TxErrorCode.ToolError;
  const error = new TxError(code, record.message, { meta: record.meta });
  return throwError(() => asDuplicateFailure(keyed, error));
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

/** A stored or shared failure, as this call's own (as {@link asDuplicate}); an error that is no TxError (a store's) as it is. */
function asDuplicateFailure(keyed: Keyed, error: unknown): unknown {
  if (!isTxError(error)) return error;
  return error.withMeta(duplicateMeta(keyed, error.meta ?? failureMetaOf(keyed, error)));
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
