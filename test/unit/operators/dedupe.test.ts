import fc from 'fast-check';
import { finalize, map, type Observable, switchMap, throwError, timer, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { dedupe } from '../../../operators/dedupe.js';
import type { TxCall } from '../../../src/call/call.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import type { TxResult } from '../../../src/core/types.js';
import { fingerprint } from '../../../src/idempotency/fingerprint.js';
import { memoryIdempotencyStore } from '../../../src/idempotency/memoryStore.js';
import type { BeginOutcome, IdempotencyStore } from '../../../src/idempotency/store.js';
import { answeringLater } from '../../support/slowStore.js';
import { okResult, virtualCall } from '../../support/virtualCall.js';

/** A source that answers after 1 s of virtual time and says whether it was finalized (completed or unsubscribed). */
function slowSource(scheduler: VirtualTimeScheduler) {
  const source = {
    finalized: false,
    run: () =>
      timer(1_000, scheduler).pipe(
        finalize(() => {
          source.finalized = true;
        }),
        map(() => okResult()),
      ),
  };
  return source;
}

import { advanceVirtual } from '../../support/virtualTime.js';

// The store answers with promises, which TestScheduler.run cannot wait for (it flushes synchronously):
// these tests drive a VirtualTimeScheduler one due time after another, letting promises settle in between.

const EXECUTION_MS = 50;

interface Outcome {
  readonly at: number;
  readonly result?: TxResult;
  readonly error?: TxError;
}

/** A virtual world: a clock, a store on it, and keyed calls of `charge` whose executions are logged. */
function world(storeOptions: { windowMs?: number } = {}) {
  const scheduler = new VirtualTimeScheduler();
  const store = memoryIdempotencyStore({ ...storeOptions, clock: () => scheduler.now() });
  const executions: Array<{ at: number; args: Record<string, unknown> }> = [];
  const succeed = (args: Record<string, unknown>) =>
    timer(EXECUTION_MS, scheduler).pipe(map(() => ({ ...okResult(1, 'charge'), data: args })));

  /** A `charge` call keyed `key`; each execution is logged, then runs `execute` (by default: succeeds after 50 ms). */
  const call = (
    args: Record<string, unknown>,
    key = 'order-1',
    execute: () => Observable<TxResult> = () => succeed(args),
  ): TxCall =>
    virtualCall(
      () => {
        executions.push({ at: scheduler.now(), args });
        return execute();
      },
      { scheduler, request: { name: 'charge', args, idempotencyKey: key, createdAtMs: scheduler.now() } },
    );

  /** Subscribes `observable` at virtual time `at` and collects how it ends. */
  const subscribeAt = (observable: Observable<TxResult>, at = scheduler.now()) => {
    const outcome: { current?: Outcome } = {};
    scheduler.schedule(() => {
      observable.subscribe({
        next: (result) => {
          outcome.current = { at: scheduler.now(), result };
        },
        error: (error: TxError) => {
          outcome.current = { at: scheduler.now(), error };
        },
      });
    }, at - scheduler.now());
    return outcome;
  };

  /** Runs everything due up to `end`, one due time after another, settling promises between them. */
  const runUntil = async (end: number) => {
    await advanceVirtual(scheduler, 0);
    while (scheduler.frame < end) {
      const next = Math.min(end, ...scheduler.actions.map((action) => action.delay ?? 0));
      await advanceVirtual(scheduler, next - scheduler.frame);
    }
  };

  return { scheduler, store, executions, call, subscribeAt, runUntil };
}

/** `store` with the virtual times at which `begin` was asked. */
function recordingBegins(store: IdempotencyStore, scheduler: VirtualTimeScheduler) {
  const begins: number[] = [];
  const recording: IdempotencyStore = {
    windowMs: store.windowMs,
    begin: (key, print, ttlMs) => {
      begins.push(scheduler.now());
      return store.begin(key, print, ttlMs);
    },
    complete: (key, print, record, ttlMs) => store.complete(key, print, record, ttlMs),
    release: (key, token) => store.release(key, token),
  };
  return { begins, store: recording };
}

/** An execution that fails with `error` after `ms` of virtual time. */
const failsAfter = (scheduler: VirtualTimeScheduler, ms: number, error: TxError) => () =>
  timer(ms, scheduler).pipe(switchMap(() => throwError(() => error)));

const args = { cents: 500 };
const heldElsewhere = (store: IdempotencyStore, ttlMs = 60_000) =>
  store.begin('charge:order-1', fingerprint(args), ttlMs);

describe('dedupe in virtual time: a key held by another process', () => {
  it('asks the store again every pollMs, then replays the holder’s result', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    await heldElsewhere(store);
    const recording = recordingBegins(store, scheduler);
    const waiting = { inProgress: { waitMs: 1_000, pollMs: 100 }, scheduler };
    const outcome = subscribeAt(call(args).pipe(dedupe(recording.store, waiting)));
    const stored = { kind: 'result' as const, result: { content: [] }, data: { charged: true } };
    scheduler.schedule(() => void store.complete('charge:order-1', fingerprint(args), stored, 60_000), 250);
    await runUntil(2_000);
    expect(recording.begins).toEqual([0, 100, 200, 300]);
    expect(outcome.current?.at).toBe(300);
    expect(outcome.current?.result?.data).toEqual({ charged: true });
    expect(outcome.current?.result?.meta).toMatchObject({ duplicate: true, attempts: 0, durationMs: 300 });
    expect(executions).toHaveLength(0);
  });

  it('gives up with MCP_TX_IN_PROGRESS (retryable) before waitMs runs out, leaving no timer behind', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    await heldElsewhere(store);
    const recording = recordingBegins(store, scheduler);
    const waiting = { inProgress: { waitMs: 450, pollMs: 100 }, scheduler };
    const outcome = subscribeAt(call(args).pipe(dedupe(recording.store, waiting)));
    await runUntil(2_000);
    expect(recording.begins).toEqual([0, 100, 200, 300, 400]);
    expect(outcome.current?.at).toBe(400);
    expect(outcome.current?.error).toMatchObject({ code: TxErrorCode.InProgress, retryable: true });
    expect(executions).toHaveLength(0);
    expect(scheduler.actions).toHaveLength(0);
  });

  it('runs the call itself once the holder’s in-progress record expires (a crashed holder)', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    await heldElsewhere(store, 250);
    const waiting = { inProgress: { waitMs: 1_000, pollMs: 100 }, scheduler };
    const outcome = subscribeAt(call(args).pipe(dedupe(store, waiting)));
    await runUntil(2_000);
    expect(executions.map((execution) => execution.at)).toEqual([300]);
    expect(outcome.current?.at).toBe(300 + EXECUTION_MS);
    expect(outcome.current?.result?.meta.duplicate).toBe(false);
  });

  it('fails at once when waiting is off (waitMs 0)', async () => {
    const { scheduler, store, call, subscribeAt, runUntil } = world();
    await heldElsewhere(store);
    const outcome = subscribeAt(call(args).pipe(dedupe(store, { inProgress: { waitMs: 0, pollMs: 100 } })));
    await runUntil(1_000);
    expect(outcome.current).toMatchObject({ at: 0, error: { code: TxErrorCode.InProgress } });
    expect(scheduler.actions).toHaveLength(0);
  });
});

describe('dedupe in virtual time: calls in this process', () => {
  it('shares a call in flight across separate dedupe instances, then replays it from the store', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    const first = subscribeAt(call(args).pipe(dedupe(store, { scheduler })), 0);
    const joined = subscribeAt(call(args).pipe(dedupe(store, { scheduler })), 20);
    const later = subscribeAt(call(args).pipe(dedupe(store, { scheduler })), 500);
    await runUntil(1_000);
    expect(executions).toHaveLength(1);
    expect(first.current).toMatchObject({ at: 50, result: { meta: { duplicate: false, attempts: 1 } } });
    expect(joined.current).toMatchObject({ at: 50, result: { meta: { duplicate: true, attempts: 0 } } });
    expect(joined.current?.result?.meta.durationMs).toBe(30);
    expect(later.current).toMatchObject({ at: 500, result: { meta: { duplicate: true, attempts: 0 } } });
    const requestIds = [first, joined, later].map((outcome) => outcome.current?.result?.meta.requestId);
    expect(new Set(requestIds).size).toBe(3);
  });

  it('refuses other arguments for a key in flight without touching the running call', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    const first = subscribeAt(call(args).pipe(dedupe(store, { scheduler })), 0);
    const other = subscribeAt(call({ cents: 900 }).pipe(dedupe(store, { scheduler })), 20);
    await runUntil(1_000);
    expect(other.current).toMatchObject({
      at: 20,
      error: { code: TxErrorCode.IdempotencyConflict, retryable: false, meta: { status: 'rejected' } },
    });
    expect(first.current?.result?.meta.duplicate).toBe(false);
    expect(executions).toHaveLength(1);
  });

  it('runs the key again once the window has passed', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    subscribeAt(call(args).pipe(dedupe(store, { windowMs: 1_000, scheduler })), 0);
    subscribeAt(call(args).pipe(dedupe(store, { windowMs: 1_000, scheduler })), 1_000);
    subscribeAt(call(args).pipe(dedupe(store, { windowMs: 1_000, scheduler })), 1_100);
    await runUntil(2_000);
    expect(executions.map((execution) => execution.at)).toEqual([0, 1_100]);
  });

  it('releases the key when the caller unsubscribes, and unsubscribes the source', async () => {
    const { scheduler, store, call, runUntil } = world();
    const source = slowSource(scheduler);
    const subscription = call(args, 'order-1', source.run).pipe(dedupe(store, { scheduler })).subscribe();
    await runUntil(100);
    subscription.unsubscribe();
    await runUntil(200);
    expect(source.finalized).toBe(true);
    expect((await store.begin('charge:order-1', fingerprint(args), 1)).status).toBe('new');
  });

  it('keeps a shared call running while one caller is left, and unsubscribes it when the last leaves', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    const source = slowSource(scheduler);
    const first = call(args, 'order-1', source.run).pipe(dedupe(store, { scheduler })).subscribe();
    const second = call(args, 'order-1', source.run).pipe(dedupe(store, { scheduler })).subscribe();
    await runUntil(100);
    first.unsubscribe();
    await runUntil(200);
    expect(source.finalized).toBe(false);
    second.unsubscribe();
    await runUntil(300);
    expect(source.finalized).toBe(true);
    expect(executions).toHaveLength(1);
    const third = subscribeAt(call(args).pipe(dedupe(store, { scheduler })), 400);
    await runUntil(1_000);
    expect(executions).toHaveLength(2); // the key was released, and the in-flight call forgotten
    expect(third.current?.result?.meta.duplicate).toBe(false);
  });

  it('with cacheFailures, gives later duplicates the same error without running again', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    const declined = () => throwError(() => new TxError(TxErrorCode.ToolError, 'card declined'));
    const failing = () =>
      call(args, 'order-1', declined).pipe(dedupe(store, { cacheFailures: true, scheduler }));
    const first = subscribeAt(failing(), 0);
    const again = subscribeAt(failing(), 100);
    await runUntil(500);
    expect(first.current?.error).toMatchObject({ code: TxErrorCode.ToolError, message: 'card declined' });
    expect(again.current?.error).toMatchObject({
      code: TxErrorCode.ToolError,
      message: 'card declined',
      meta: { duplicate: true, attempts: 0 },
    });
    expect(executions).toHaveLength(1);
  });
});

describe('dedupe in virtual time: callers that leave, hold too long, or fail', () => {
  it('releases a key the store gives after the caller unsubscribed, so the next call runs', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    const slow = answeringLater(store);
    const gone = call(args).pipe(dedupe(slow.store, { scheduler })).subscribe();
    gone.unsubscribe();
    slow.answer(); // the store takes the key for a caller that is no longer there
    await runUntil(10);
    const next = subscribeAt(call(args).pipe(dedupe(store, { scheduler })));
    await runUntil(1_000);
    expect(executions).toHaveLength(1);
    expect(next.current?.result?.meta.duplicate).toBe(false);
  });

  it('releases a key the store gives to a poll whose caller has gone', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    await heldElsewhere(store, 150);
    const slow = answeringLater(store);
    const waiting = { inProgress: { waitMs: 1_000, pollMs: 100 }, scheduler };
    const gone = call(args).pipe(dedupe(slow.store, waiting)).subscribe();
    slow.answer(); // in_progress: the other holder has it until 150
    await runUntil(200); // the poll at 100 is pending; the other hold expires at 150
    gone.unsubscribe();
    slow.answer(); // the poll gets the expired key, for a caller that is no longer there
    await runUntil(210);
    const next = subscribeAt(call(args).pipe(dedupe(store, waiting)));
    await runUntil(1_000);
    expect(executions.map((execution) => execution.at)).toEqual([210]);
    expect(next.current?.result?.meta.duplicate).toBe(false);
  });

  it('does not release a hold another caller took over after its own expired', async () => {
    const { scheduler, store, call, subscribeAt, runUntil } = world();
    const declined = failsAfter(scheduler, 1_000, new TxError(TxErrorCode.ToolError, 'card declined'));
    const late = subscribeAt(
      call(args, 'order-1', declined).pipe(dedupe(store, { inProgressTtlMs: 100, scheduler })),
    );
    const takeover: { outcome?: BeginOutcome } = {};
    scheduler.schedule(() => void heldElsewhere(store).then((outcome) => (takeover.outcome = outcome)), 500);
    await runUntil(2_000);
    expect(late.current).toMatchObject({ at: 1_000, error: { message: 'card declined' } });
    expect(takeover.outcome?.status).toBe('new');
    expect((await heldElsewhere(store)).status).toBe('in_progress');
  });

  it('gives a call that joined a failing call the failure as its own: own request id, duplicate, own timing', async () => {
    const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
    const firstMeta = { ...okResult().meta, requestId: 'first', status: 'failed' as const };
    const declined = new TxError(TxErrorCode.ToolError, 'card declined', { meta: firstMeta });
    const first = subscribeAt(
      call(args, 'order-1', failsAfter(scheduler, EXECUTION_MS, declined)).pipe(dedupe(store, { scheduler })),
      0,
    );
    const joining = call(args);
    const joined = subscribeAt(joining.pipe(dedupe(store, { scheduler })), 20);
    await runUntil(500);
    expect(executions).toHaveLength(1);
    expect(first.current?.error?.meta).toMatchObject({ requestId: 'first', duplicate: false, attempts: 1 });
    expect(joined.current).toMatchObject({
      at: EXECUTION_MS,
      error: {
        code: TxErrorCode.ToolError,
        message: 'card declined',
        meta: {
          requestId: joining.request.requestId,
          duplicate: true,
          attempts: 0,
          status: 'failed',
          durationMs: 30,
        },
      },
    });
  });

  const indefiniteFailures: Array<[string, TxError]> = [
    ['a cancellation', new TxError(TxErrorCode.Cancelled, 'The call was cancelled')],
    ['a timeout', new TxError(TxErrorCode.Timeout, 'timed out', { retryable: true, ambiguous: true })],
    ['a network error', new TxError(TxErrorCode.NetworkError, 'socket hang up', { retryable: true })],
    ['an open circuit', new TxError(TxErrorCode.CircuitOpen, 'circuit open')],
    ['a rate limit', new TxError(TxErrorCode.RateLimited, 'queue full')],
    ['a key in progress elsewhere', new TxError(TxErrorCode.InProgress, 'held', { retryable: true })],
    ['an unavailable store', new TxError(TxErrorCode.StoreUnavailable, 'store down')],
    ['a retryable tool error', new TxError(TxErrorCode.ToolError, 'TEMPORARY_FAILURE', { retryable: true })],
    ['an ambiguous failure', new TxError(TxErrorCode.ProtocolError, 'connection lost', { ambiguous: true })],
  ];

  it.each(indefiniteFailures)(
    'with cacheFailures, does not keep %s: the next call runs',
    async (_, failure) => {
      const { scheduler, store, executions, call, subscribeAt, runUntil } = world();
      const cached = { cacheFailures: true, scheduler };
      const first = subscribeAt(
        call(args, 'order-1', () => throwError(() => failure)).pipe(dedupe(store, cached)),
        0,
      );
      const next = subscribeAt(call(args).pipe(dedupe(store, cached)), 100);
      await runUntil(500);
      expect(first.current?.error?.code).toBe(failure.code);
      expect(next.current?.result?.meta.duplicate).toBe(false);
      expect(executions).toHaveLength(2);
    },
  );
});

describe('dedupe with a failing store', () => {
  const broken = (failing: 'begin' | 'complete' | 'release'): IdempotencyStore => {
    const store = memoryIdempotencyStore();
    const reject = () => Promise.reject(new Error(`store down (${failing})`));
    return { ...store, [failing]: reject } as IdempotencyStore;
  };

  it('fails the call with the store’s error when begin rejects, running nothing', async () => {
    const { scheduler, executions, call, subscribeAt, runUntil } = world();
    const outcome = subscribeAt(call(args).pipe(dedupe(broken('begin'), { scheduler })));
    await runUntil(100);
    expect(outcome.current?.error?.message).toBe('store down (begin)');
    expect(executions).toHaveLength(0);
  });

  it('still delivers the result of a call that ran when complete rejects', async () => {
    const { scheduler, call, subscribeAt, runUntil } = world();
    const outcome = subscribeAt(call(args).pipe(dedupe(broken('complete'), { scheduler })));
    await runUntil(100);
    expect(outcome.current?.result?.data).toEqual(args);
  });

  it('keeps the call’s own error when release rejects, and never leaves an unhandled rejection', async () => {
    const { scheduler, call, subscribeAt, runUntil } = world();
    const declined = () => throwError(() => new TxError(TxErrorCode.ToolError, 'card declined'));
    const failed = subscribeAt(call(args, 'a', declined).pipe(dedupe(broken('release'), { scheduler })));
    const abandoned = call(args, 'b')
      .pipe(dedupe(broken('release'), { scheduler }))
      .subscribe();
    await runUntil(10);
    abandoned.unsubscribe();
    await runUntil(100);
    expect(failed.current?.error?.message).toBe('card declined');
  });
});

describe('dedupe property in virtual time', () => {
  const WINDOW_MS = 1_000;
  const keyedCall = fc.record({
    key: fc.integer({ min: 0, max: 2 }),
    variant: fc.integer({ min: 0, max: 1 }),
    gapMs: fc.integer({ min: 0, max: 700 }),
  });

  it('executes each key at most once per window and refuses other arguments while it is held', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(keyedCall, { minLength: 1, maxLength: 15 }), async (plan) => {
        const { scheduler, store, executions, call, subscribeAt, runUntil } = world({ windowMs: WINDOW_MS });
        let at = 0;
        const calls = plan.map(({ key, variant, gapMs }) => {
          at += gapMs;
          const callArgs = { key, variant };
          const outcome = subscribeAt(call(callArgs, `k${key}`).pipe(dedupe(store, { scheduler })), at);
          return { at, key, variant, outcome };
        });
        await runUntil(at + WINDOW_MS + 1_000);

        const runsOf = (key: number) => executions.filter((execution) => execution.args.key === key);
        for (const key of [0, 1, 2]) {
          const starts = runsOf(key).map((execution) => execution.at);
          starts.slice(1).forEach((start, index) => {
            expect(start - (starts[index] as number)).toBeGreaterThan(EXECUTION_MS + WINDOW_MS);
          });
        }
        for (const { at: calledAt, key, variant, outcome } of calls) {
          const { result, error } = outcome.current ?? {};
          if (result !== undefined) expect(result.data).toEqual({ key, variant });
          else expect(error?.code).toBe(TxErrorCode.IdempotencyConflict);
          const heldByOther = runsOf(key).some(
            (run) =>
              run.args.variant !== variant &&
              run.at <= calledAt &&
              calledAt <= run.at + EXECUTION_MS + WINDOW_MS,
          );
          expect(result === undefined).toBe(heldByOther);
        }
      }),
      {
        numRuns: 60,
        // Found by this property: a refused call's execution must not make a later matching call a conflict.
        examples: [
          [
            [
              { key: 0, variant: 0, gapMs: 0 },
              { key: 0, variant: 1, gapMs: 51 },
              { key: 0, variant: 0, gapMs: 0 },
            ],
          ],
        ],
      },
    );
  });
});
