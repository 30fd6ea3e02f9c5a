/**
 * `dedupe`, the client side of keyed execution. The protocol with the store (take the key, wait,
 * run holding it, keep or release) is `src/idempotency/keyedExecution.ts`; what stays here is the
 * client's own part, which keeps the file a little over 300 lines: joining a call in flight in this
 * process, and giving stored or shared outcomes to each caller as its own duplicate.
 */
import {
  asyncScheduler,
  catchError,
  map,
  Observable,
  of,
  raceWith,
  type SchedulerLike,
  throwError,
} from 'rxjs';
import * as z from 'zod';
import { type TxCall, withCallMeta } from '../src/call/call.js';
import { buildMeta, buildResult, extractData, successOutcome } from '../src/call/result.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { PositiveMsSchema, parseOrThrow, SchedulerSchema } from '../src/config/validators.js';
import { isTxError, isTxErrorCode, saysNothingFinal, TxError, TxErrorCode } from '../src/core/errors.js';
import { isoTime } from '../src/core/time.js';
import type { TxMeta, TxResult } from '../src/core/types.js';
import { fingerprintFor, scopedKey } from '../src/idempotency/fingerprint.js';
import {
  afterKeyAnswer,
  type CallKey,
  conflictMessage,
  InProgressOptionsSchema,
  inProgressMessage,
  type Keeping,
  runHoldingKey,
  windowMsOf,
} from '../src/idempotency/keyedExecution.js';
import { sharedWhileRunning } from '../src/idempotency/sharedWhileRunning.js';
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
type Settings = z.output<typeof DedupeOptionsSchema> & {
  scheduler: SchedulerLike;
  /** How a run's outcome is kept under its key. */
  keeping: Keeping<TxResult>;
  /** The calls running on the store in this process ({@link inFlightOf}). */
  inFlight: Map<string, InFlight>;
};

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
    scheduler: parsed.scheduler ?? asyncScheduler,
    keeping: keeping(windowMsOf(store, parsed.windowMs), parsed.cacheFailures),
    inFlight: inFlightOf(store),
  };
  return txOperator('dedupe', (call) => {
    const idempotencyKey = call.request.idempotencyKey;
    if (idempotencyKey === undefined) return call;
    const key = scopedKey(call.request.name, idempotencyKey);
    const print = fingerprintFor(store, call.request.args);
    return call.derive((subscriber) => {
      const startedAtMs = settings.scheduler.now();
      const keyed: Keyed = { call, store, settings, idempotencyKey, key, fingerprint: print, startedAtMs };
      return once(keyed).subscribe(subscriber);
    });
  });
}

interface Keyed extends CallKey {
  readonly call: TxCall;
  readonly settings: Settings;
  readonly idempotencyKey: string;
  /** When this subscription started: a duplicate's `startedAt` and `durationMs` are its own. */
  readonly startedAtMs: number;
}

/**
 * The keyed call's outcome: the key's execution running in this process, joined, else a new one.
 * Beside one with other arguments, the store decides (that one may not hold the key: it may be
 * about to be refused itself).
 */
function once(keyed: Keyed): Observable<TxResult> {
  const running = keyed.settings.inFlight.get(keyed.key);
  if (running === undefined) return execute(keyed);
  if (running.fingerprint !== keyed.fingerprint) return askStore(keyed);
  return join(keyed, running.execution);
}

/** Takes the key from the store (waiting while another process holds it) and runs, replays or refuses, as its answer says. */
function askStore(keyed: Keyed): Observable<TxResult> {
  return afterKeyAnswer(keyed, keyed.settings, (outcome) => settle(keyed, outcome));
}

/** Starts the key's execution, shared with the calls that join it while it runs. */
function execute(keyed: Keyed): Observable<TxResult> {
  const { inFlight } = keyed.settings;
  // Forgotten before its outcome reaches the callers: one that calls again, or starts over, must not join it.
  const forget = () => {
    if (inFlight.get(keyed.key)?.execution === execution) inFlight.delete(keyed.key);
  };
  const execution = sharedWhileRunning(askStore(keyed), forget);
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

/** What to do with the store's final answer: run holding the key, replay, or refuse. */
function settle(keyed: Keyed, outcome: BeginOutcome): Observable<TxResult> {
  switch (outcome.status) {
    case 'new':
      return runHoldingKey(keyed.call, keyed, outcome.token, keyed.settings.keeping);
    case 'completed':
      return replay(keyed, outcome.record);
    case 'conflict':
      return throwError(() => conflict(keyed));
    case 'in_progress':
      return throwError(() => stillInProgress(keyed));
  }
}

/**
 * What a run leaves under its key, for `windowMs`: its result; a definite failure only when
 * `cacheFailures`. Any other ending (another failure, no result) releases the key.
 */
function keeping(windowMs: number, cacheFailures: boolean): Keeping<TxResult> {
  return {
    windowMs,
    afterResult: (result) => (result === undefined ? 'release' : resultRecord(result)),
    afterFailure: (error) => (cacheFailures && isDefiniteFailure(error) ? failureRecord(error) : 'release'),
  };
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
  const message = conflictMessage(keyed.call.request.name, keyed.idempotencyKey);
  return withCallMeta(keyed.call, new TxError(TxErrorCode.IdempotencyConflict, message)) as TxError;
}

function stillInProgress(keyed: Keyed): TxError {
  const held = inProgressMessage(keyed.call.request.name, keyed.idempotencyKey);
  const message = `${held} elsewhere (waited ${keyed.settings.inProgress.waitMs} ms)`;
  const error = new TxError(TxErrorCode.InProgress, message, { retryable: true });
  return withCallMeta(keyed.call, error) as TxError;
}
