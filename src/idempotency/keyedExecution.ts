/**
 * The keyed-execution protocol, written once for the client's `dedupe` and the server's `txTool`:
 * take the key from the store (`begin`), wait while another holder runs it, run while holding it,
 * then complete it with a record or release it, fenced by the token of the hold. Built on RxJS, so
 * that a caller who leaves (unsubscribes) frees what it took, and waits run on any scheduler.
 */
import {
  defaultIfEmpty,
  fromEvent,
  noop,
  Observable,
  of,
  type SchedulerLike,
  switchMap,
  takeUntil,
  timer,
} from 'rxjs';
import * as z from 'zod';
import { PositiveMsSchema } from '../config/validators.js';
import {
  type BeginOutcome,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  type IdempotencyRecord,
  type IdempotencyStore,
} from './store.js';

/**
 * The options of a wait for a key another request holds, to spread into an options schema:
 * `inProgressTtlMs` (120 000), how long a taken key stays held, so that a crashed holder does not
 * block it forever; `inProgress` (`{ waitMs: 30_000, pollMs }`), how long to wait for the other
 * holder and how often to ask the store again.
 *
 * @example
 * const OptionsSchema = z.strictObject({ ...InProgressOptionsSchema(100), scheduler: SchedulerSchema.optional() });
 */
export const InProgressOptionsSchema = (pollMs: number) => ({
  inProgressTtlMs: PositiveMsSchema.default(120_000),
  inProgress: z
    .strictObject({ waitMs: z.number().int().min(0, 'must be at least 0'), pollMs: PositiveMsSchema })
    .default({ waitMs: 30_000, pollMs }),
});

/**
 * How {@link beginKey} takes a key: held for `inProgressTtlMs` once taken; while another holds it,
 * asked again every `inProgress.pollMs` for up to `inProgress.waitMs`, on `scheduler`.
 *
 * @example
 * const wait: KeyWait = { inProgressTtlMs: 120_000, inProgress: { waitMs: 5_000, pollMs: 100 }, scheduler: asyncScheduler };
 */
export interface KeyWait {
  readonly inProgressTtlMs: number;
  readonly inProgress: { readonly waitMs: number; readonly pollMs: number };
  readonly scheduler: SchedulerLike;
}

/**
 * A call's idempotency key in its store: the store, the key (scoped by tool) and the fingerprint of
 * the call's arguments.
 *
 * @example
 * const callKey: CallKey = { store, key: scopedKey('charge', 'order-42'), fingerprint: fingerprint(args) };
 */
export interface CallKey {
  readonly store: IdempotencyStore;
  readonly key: string;
  readonly fingerprint: string;
}

/**
 * How long a key's record is kept: `windowMs` when the caller says, else the store's own window,
 * else {@link DEFAULT_IDEMPOTENCY_WINDOW_MS}.
 *
 * @example
 * windowMsOf(memoryIdempotencyStore({ windowMs: 60_000 }), undefined); // 60_000
 */
export function windowMsOf(store: IdempotencyStore, windowMs: number | undefined): number {
  return windowMs ?? store.windowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
}

/**
 * The store's answer for the key, once it is final: asks `begin`, and while the answer is
 * `in_progress` asks again every `pollMs` until `waitMs` (counted from the first answer) would pass
 * — then emits that last `in_progress`. A `new` answer makes the subscriber the key's holder: run
 * it with {@link runHoldingKey}. A key the store grants after the subscriber left is released at
 * once, with its token. For a caller that cannot unsubscribe (one awaiting a promise), `signal`
 * ends the wait when it aborts (at once if it has): the answer is then `in_progress`.
 *
 * @example
 * const outcome = await firstValueFrom(beginKey(callKey, wait, request.signal));
 */
export function beginKey(callKey: CallKey, wait: KeyWait, signal?: AbortSignal): Observable<BeginOutcome> {
  const answer = afterKeyAnswer(callKey, wait, (outcome) => of(outcome));
  if (signal === undefined) return answer;
  return answer.pipe(takeUntil(abortOf(signal)), defaultIfEmpty(IN_PROGRESS));
}

/**
 * What `then` makes of the store's final answer for the key ({@link beginKey}'s, without a
 * signal): `beginKey(callKey, wait).pipe(switchMap(then))`, without the cost of two `switchMap`s
 * on every keyed call.
 *
 * @example
 * afterKeyAnswer(callKey, wait, (outcome) =>
 *   outcome.status === 'new' ? runHoldingKey(work$, callKey, outcome.token, keeping) : replay(outcome),
 * );
 */
export function afterKeyAnswer<T>(
  callKey: CallKey,
  wait: KeyWait,
  then: (outcome: BeginOutcome) => Observable<T>,
): Observable<T> {
  const { scheduler, inProgress } = wait;
  // Most first answers are final (`new`, `completed`, `conflict`): only a held key starts polling.
  const ask = (deadline: number | undefined): Observable<T> =>
    askStore(callKey, wait.inProgressTtlMs, (outcome) => {
      if (outcome.status !== 'in_progress') return then(outcome);
      const until = deadline ?? scheduler.now() + inProgress.waitMs;
      if (scheduler.now() + inProgress.pollMs > until) return then(outcome);
      return timer(inProgress.pollMs, scheduler).pipe(switchMap(() => ask(until)));
    });
  return ask(undefined);
}

const IN_PROGRESS: BeginOutcome = { status: 'in_progress' };

/** Emits when `signal` aborts, at once if it has. */
function abortOf(signal: AbortSignal): Observable<unknown> {
  return signal.aborted ? of(signal.reason) : fromEvent(signal, 'abort');
}

/**
 * One `begin`, then what `then` makes of its answer; a `new` answer that arrives after the
 * subscriber left is released.
 */
function askStore<T>(
  { store, key, fingerprint }: CallKey,
  holdTtlMs: number,
  then: (outcome: BeginOutcome) => Observable<T>,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    store.begin(key, fingerprint, holdTtlMs).then(
      (outcome) => {
        if (subscriber.closed) {
          if (outcome.status === 'new') store.release(key, outcome.token).catch(noop);
          return;
        }
        let next: Observable<T>;
        try {
          next = then(outcome);
        } catch (error) {
          subscriber.error(error);
          return;
        }
        next.subscribe(subscriber);
      },
      (error: unknown) => subscriber.error(error),
    );
  });
}

/**
 * What becomes of a held key when its run ends: a record, kept for the window (`complete`);
 * `'release'`, so that the call may run again; or `'leave-held'`, when the caller settles the key
 * itself with its token (an effect committed with the record, say).
 *
 * @example
 * const fate: KeyFate = result.isError ? 'release' : { kind: 'result', result };
 */
export type KeyFate = IdempotencyRecord | 'release' | 'leave-held';

/**
 * How {@link runHoldingKey} settles the key: the {@link KeyFate} after the source completed (given
 * its last value, `undefined` if none) or failed, and how long a kept record lasts.
 *
 * @example
 * const keeping: Keeping<CallToolResult> = {
 *   windowMs: 3_600_000,
 *   afterResult: (result) => (result === undefined ? 'release' : { kind: 'result', result }),
 *   afterFailure: () => 'release',
 * };
 */
export interface Keeping<T> {
  readonly windowMs: number;
  afterResult(last: T | undefined): KeyFate;
  afterFailure(error: unknown): KeyFate;
}

/**
 * Runs `source` while holding the key (`token`, from the `new` outcome of {@link beginKey}), then
 * settles the key as `keeping` says, and only then emits the source's last value and completes, or
 * fails with its error. A store that fails to settle the key changes nothing of that: the source
 * ran, and its outcome is the answer. A subscriber that leaves before the end unsubscribes the
 * source and releases the key.
 *
 * @example
 * runHoldingKey(defer(() => chargeCard(order)), callKey, outcome.token, keeping).subscribe(console.log);
 */
export function runHoldingKey<T>(
  source: Observable<T>,
  callKey: CallKey,
  token: string | undefined,
  keeping: Keeping<T>,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    let last: T | undefined;
    let ended = false;
    const settleThen = (fate: KeyFate, deliver: () => void) => {
      ended = true;
      settle(callKey, token, fate, keeping.windowMs).then(deliver, deliver);
    };
    const running = source.subscribe({
      next: (value) => {
        last = value;
      },
      error: (error: unknown) => settleThen(keeping.afterFailure(error), () => subscriber.error(error)),
      complete: () =>
        settleThen(keeping.afterResult(last), () => {
          if (last !== undefined) subscriber.next(last);
          subscriber.complete();
        }),
    });
    return () => {
      running.unsubscribe();
      if (!ended) callKey.store.release(callKey.key, token).catch(noop);
    };
  });
}

/** Does to the key what `fate` says, fenced by `token`. */
function settle(callKey: CallKey, token: string | undefined, fate: KeyFate, windowMs: number): Promise<void> {
  const { store, key, fingerprint } = callKey;
  if (fate === 'leave-held') return Promise.resolve();
  if (fate === 'release') return store.release(key, token);
  return store.complete(key, fingerprint, fate, windowMs);
}

/**
 * The words for a key used with other arguments (`MCP_TX_IDEMPOTENCY_CONFLICT`).
 *
 * @example
 * conflictMessage('charge', 'order-42'); // 'Idempotency key "order-42" was already used for charge with other arguments'
 */
export function conflictMessage(tool: string, idempotencyKey: string): string {
  return `Idempotency key "${idempotencyKey}" was already used for ${tool} with other arguments`;
}

/**
 * The words for a key another holder still runs after the wait (`MCP_TX_IN_PROGRESS`).
 *
 * @example
 * inProgressMessage('charge', 'order-42'); // 'A call of charge with idempotency key "order-42" is still in progress'
 */
export function inProgressMessage(tool: string, idempotencyKey: string): string {
  return `A call of ${tool} with idempotency key "${idempotencyKey}" is still in progress`;
}
