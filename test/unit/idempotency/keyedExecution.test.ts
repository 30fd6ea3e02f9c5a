import { finalize, map, type Observable, of, switchMap, throwError, timer, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  afterKeyAnswer,
  beginKey,
  type CallKey,
  type Keeping,
  type KeyWait,
  runHoldingKey,
} from '../../../src/idempotency/keyedExecution.js';
import { memoryIdempotencyStore } from '../../../src/idempotency/memoryStore.js';
import type { BeginOutcome, IdempotencyRecord, IdempotencyStore } from '../../../src/idempotency/store.js';
import { answeringLater } from '../../support/slowStore.js';
import { advanceVirtual } from '../../support/virtualTime.js';

// The store answers with promises: a VirtualTimeScheduler is driven one due time after another,
// letting them settle in between (TestScheduler.run flushes synchronously and cannot wait for them).

const KEY = 'charge:order-1';
const PRINT = 'print-1';

const resultRecord = (text: string): IdempotencyRecord => ({
  kind: 'result',
  result: { content: [{ type: 'text', text }] },
});

/** Keeps a result as a record for 60 s; releases the key on a failure or no result. */
const keepResults: Keeping<string> = {
  windowMs: 60_000,
  afterResult: (text) => (text === undefined ? 'release' : resultRecord(text)),
  afterFailure: () => 'release',
};

interface Ending<T> {
  at?: number;
  value?: T;
  error?: unknown;
  completed?: boolean;
}

/** A virtual clock, a memory store on it, and the means to watch observables in virtual time. */
function world(inProgress = { waitMs: 1_000, pollMs: 100 }) {
  const scheduler = new VirtualTimeScheduler();
  const memory = memoryIdempotencyStore({ clock: () => scheduler.now() });
  const begins: number[] = [];
  /** The memory store, noting the virtual times at which `begin` is asked. */
  const store: IdempotencyStore = {
    ...memory,
    begin: (key, print, ttlMs) => {
      begins.push(scheduler.now());
      return memory.begin(key, print, ttlMs);
    },
  };
  const callKey: CallKey = { store, key: KEY, fingerprint: PRINT };
  const wait: KeyWait = { inProgressTtlMs: 10_000, inProgress, scheduler };

  /** Subscribes `observable` now and notes how it ends. */
  const watch = <T>(observable: Observable<T>) => {
    const ending: Ending<T> = {};
    const subscription = observable.subscribe({
      next: (value) => {
        ending.value = value;
      },
      error: (error: unknown) => Object.assign(ending, { at: scheduler.now(), error }),
      complete: () => Object.assign(ending, { at: scheduler.now(), completed: true }),
    });
    return { ending, subscription };
  };

  /** Runs everything due up to `end`, one due time after another, settling promises between them. */
  const runUntil = async (end: number) => {
    await advanceVirtual(scheduler, 0);
    while (scheduler.frame < end) {
      const next = Math.min(end, ...scheduler.actions.map((action) => action.delay ?? 0));
      await advanceVirtual(scheduler, next - scheduler.frame);
    }
  };

  /** `value` after `ms` of virtual time. */
  const valueAfter = <T>(ms: number, value: T) => timer(ms, scheduler).pipe(map(() => value));
  /** A failure after `ms` of virtual time. */
  const failsAfter = (ms: number, message: string) =>
    timer(ms, scheduler).pipe(switchMap(() => throwError(() => new Error(message))));

  return { scheduler, store: memory, begins, callKey, wait, watch, runUntil, valueAfter, failsAfter };
}

const statusOf = async (store: IdempotencyStore, print = PRINT) => (await store.begin(KEY, print, 1)).status;

describe('beginKey', () => {
  it('grants a free key (new, with a token), then runHoldingKey runs the source and completes the key', async () => {
    const { store, callKey, wait, watch, runUntil, valueAfter } = world();
    const run = beginKey(callKey, wait).pipe(
      switchMap((outcome) => {
        if (outcome.status !== 'new') throw new Error(`expected new, got ${outcome.status}`);
        expect(outcome.token).toEqual(expect.any(String));
        return runHoldingKey(valueAfter(50, 'charged'), callKey, outcome.token, keepResults);
      }),
    );
    const { ending } = watch(run);
    await runUntil(1_000);
    expect(ending).toEqual({ at: 50, value: 'charged', completed: true });
    expect(await store.begin(KEY, PRINT, 1)).toEqual({
      status: 'completed',
      record: resultRecord('charged'),
    });
  });

  it('asks again every pollMs while another holds the key, and emits its completion', async () => {
    const { scheduler, store, begins, callKey, wait, watch, runUntil } = world();
    await store.begin(KEY, PRINT, 60_000);
    scheduler.schedule(() => void store.complete(KEY, PRINT, resultRecord('theirs'), 60_000), 250);
    const { ending } = watch(beginKey(callKey, wait));
    await runUntil(2_000);
    expect(begins).toEqual([0, 100, 200, 300]);
    expect(ending).toEqual({
      at: 300,
      value: { status: 'completed', record: resultRecord('theirs') },
      completed: true,
    });
  });

  it('emits in_progress once another poll would pass waitMs, leaving no timer behind', async () => {
    const { scheduler, store, begins, callKey, wait, watch, runUntil } = world({ waitMs: 450, pollMs: 100 });
    await store.begin(KEY, PRINT, 60_000);
    const { ending } = watch(beginKey(callKey, wait));
    await runUntil(2_000);
    expect(begins).toEqual([0, 100, 200, 300, 400]);
    expect(ending).toEqual({ at: 400, value: { status: 'in_progress' }, completed: true });
    expect(scheduler.actions).toHaveLength(0);
  });

  it('answers in_progress at once when waiting is off (waitMs 0)', async () => {
    const { store, begins, callKey, wait, watch, runUntil } = world({ waitMs: 0, pollMs: 100 });
    await store.begin(KEY, PRINT, 60_000);
    const { ending } = watch(beginKey(callKey, wait));
    await runUntil(1_000);
    expect(begins).toEqual([0]);
    expect(ending).toMatchObject({ at: 0, value: { status: 'in_progress' } });
  });

  it('answers conflict for a key used with other arguments, without waiting', async () => {
    const { store, begins, callKey, wait, watch, runUntil } = world();
    await store.begin(KEY, 'other-print', 60_000);
    const { ending } = watch(beginKey(callKey, wait));
    await runUntil(1_000);
    expect(begins).toEqual([0]);
    expect(ending).toEqual({ at: 0, value: { status: 'conflict' }, completed: true });
  });

  it('releases a key the store grants after the subscriber left', async () => {
    const { store, callKey, wait, watch, runUntil } = world();
    const slow = answeringLater(store);
    const { ending, subscription } = watch(beginKey({ ...callKey, store: slow.store }, wait));
    subscription.unsubscribe();
    slow.answer(); // the store takes the key for a subscriber that is no longer there
    await runUntil(10);
    expect(ending).toEqual({});
    expect(await statusOf(store)).toBe('new');
  });

  it('releases a key a poll gets after the subscriber left', async () => {
    const { store, callKey, wait, watch, runUntil } = world();
    await store.begin(KEY, PRINT, 150); // another holder, until 150
    const slow = answeringLater(store);
    const { subscription } = watch(beginKey({ ...callKey, store: slow.store }, wait));
    slow.answer(); // in_progress
    await runUntil(200); // the poll at 100 is asked, not answered; the other hold expires at 150
    subscription.unsubscribe();
    slow.answer(); // the poll gets the expired key
    await runUntil(210);
    expect(await statusOf(store)).toBe('new');
  });

  it('with a signal, answers in_progress when it aborts during the wait, and stops asking', async () => {
    const { scheduler, store, begins, callKey, wait, watch, runUntil } = world();
    await store.begin(KEY, PRINT, 60_000);
    const controller = new AbortController();
    scheduler.schedule(() => controller.abort(), 250);
    const { ending } = watch(beginKey(callKey, wait, controller.signal));
    await runUntil(2_000);
    expect(begins).toEqual([0, 100, 200]);
    expect(ending).toEqual({ at: 250, value: { status: 'in_progress' }, completed: true });
    expect(scheduler.actions).toHaveLength(0);
  });
});

describe('afterKeyAnswer', () => {
  it('goes on with what `then` makes of the final answer, after the waits', async () => {
    const { scheduler, store, begins, callKey, wait, watch, runUntil, valueAfter } = world();
    await store.begin(KEY, PRINT, 60_000);
    scheduler.schedule(() => void store.complete(KEY, PRINT, resultRecord('done'), 60_000), 250);
    const { ending } = watch(
      afterKeyAnswer(callKey, wait, (outcome) => valueAfter(10, `${outcome.status} at ${scheduler.now()}`)),
    );
    await runUntil(1_000);
    expect(begins).toEqual([0, 100, 200, 300]);
    expect(ending).toEqual({ at: 310, value: 'completed at 300', completed: true });
  });

  it('fails with what `then` throws', async () => {
    const { callKey, wait, watch, runUntil } = world();
    const { ending } = watch(
      afterKeyAnswer(callKey, wait, () => {
        throw new Error('no way');
      }),
    );
    await runUntil(100);
    expect(ending).toMatchObject({ at: 0, error: { message: 'no way' } });
  });

  it('releases a key the store grants after the subscriber left, running nothing', async () => {
    const { store, callKey, wait, runUntil } = world();
    const slow = answeringLater(store);
    let ran = false;
    const subscription = afterKeyAnswer({ ...callKey, store: slow.store }, wait, () => {
      ran = true;
      return of('ran');
    }).subscribe();
    subscription.unsubscribe();
    slow.answer(); // the store takes the key for a subscriber that is no longer there
    await runUntil(10);
    expect(ran).toBe(false);
    expect(await statusOf(store)).toBe('new');
  });
});

describe('runHoldingKey', () => {
  it('releases the key and unsubscribes the source when the subscriber leaves before the end', async () => {
    const { scheduler, store, callKey, watch, runUntil } = world();
    const { token } = (await store.begin(KEY, PRINT, 60_000)) as Extract<BeginOutcome, { status: 'new' }>;
    let finalized = false;
    const slow = timer(1_000, scheduler).pipe(
      map(() => 'late'),
      finalize(() => (finalized = true)),
    );
    const { subscription } = watch(runHoldingKey(slow, callKey, token, keepResults));
    await runUntil(100);
    subscription.unsubscribe();
    await runUntil(200);
    expect(finalized).toBe(true);
    expect(await statusOf(store)).toBe('new');
  });

  it('releases the key when the source fails, then gives the failure', async () => {
    const { store, callKey, watch, runUntil, failsAfter } = world();
    const { token } = (await store.begin(KEY, PRINT, 60_000)) as Extract<BeginOutcome, { status: 'new' }>;
    const { ending } = watch(runHoldingKey(failsAfter(50, 'declined'), callKey, token, keepResults));
    await runUntil(1_000);
    expect(ending).toMatchObject({ at: 50, error: { message: 'declined' } });
    expect(await statusOf(store)).toBe('new');
  });

  it('releases only its own hold: not one another caller took after it expired', async () => {
    const { scheduler, store, callKey, watch, runUntil, failsAfter } = world();
    const { token } = (await store.begin(KEY, PRINT, 100)) as Extract<BeginOutcome, { status: 'new' }>;
    scheduler.schedule(() => void store.begin(KEY, PRINT, 60_000), 500); // takes over the expired hold
    watch(runHoldingKey(failsAfter(1_000, 'declined'), callKey, token, keepResults));
    await runUntil(2_000);
    expect(await statusOf(store)).toBe('in_progress');
  });

  it("leaves the key held when the fate is 'leave-held'", async () => {
    const { store, callKey, watch, runUntil, valueAfter } = world();
    const { token } = (await store.begin(KEY, PRINT, 60_000)) as Extract<BeginOutcome, { status: 'new' }>;
    const leaving: Keeping<string> = { ...keepResults, afterResult: () => 'leave-held' };
    const { ending } = watch(runHoldingKey(valueAfter(50, 'effect'), callKey, token, leaving));
    await runUntil(1_000);
    expect(ending).toEqual({ at: 50, value: 'effect', completed: true });
    expect(await statusOf(store)).toBe('in_progress');
  });

  it('still gives the source’s value when the store fails to complete the key', async () => {
    const { store, callKey, watch, runUntil, valueAfter } = world();
    const { token } = (await store.begin(KEY, PRINT, 60_000)) as Extract<BeginOutcome, { status: 'new' }>;
    const broken: IdempotencyStore = { ...store, complete: () => Promise.reject(new Error('store down')) };
    const { ending } = watch(
      runHoldingKey(valueAfter(50, 'charged'), { ...callKey, store: broken }, token, keepResults),
    );
    await runUntil(1_000);
    expect(ending).toEqual({ at: 50, value: 'charged', completed: true });
  });
});
