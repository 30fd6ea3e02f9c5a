import fc from 'fast-check';
import {
  firstValueFrom,
  lastValueFrom,
  merge,
  Subject,
  switchMap,
  toArray,
  VirtualTimeScheduler,
} from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { dedupe } from '../../../operators/dedupe.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import { fingerprint } from '../../../src/idempotency/fingerprint.js';
import { memoryIdempotencyStore } from '../../../src/idempotency/memoryStore.js';
import { cancellations, connectFixture, expectFailure, type Fixture, until } from '../../support/fixture.js';
import { advanceVirtual } from '../../support/virtualTime.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

describe('dedupe over a real MCP server', () => {
  it('runs a keyed call once; repeats get the stored result with duplicate: true', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    const results = [];
    for (let index = 0; index < 5; index++) {
      const call = fixture.tx.attempt$('counter', { key: 'a' }, { idempotencyKey: 'order-1' });
      results.push(await firstValueFrom(call.pipe(dedupe(store))));
    }
    expect(fixture.effects.get('a')).toBe(1);
    expect(results.map((result) => result.meta.duplicate)).toEqual([false, true, true, true, true]);
    expect(results.every((result) => (result.data as { count: number }).count === 1)).toBe(true);
    expect(new Set(results.map((result) => result.meta.requestId)).size).toBe(5);
    expect(results[1]?.meta.attempts).toBe(0);
  });

  it('shares a call in flight: 10 concurrent subscribers, one execution', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    const calls = Array.from({ length: 10 }, () =>
      fixture.tx.attempt$('slow_effect', { key: 'b', ms: 20 }, { idempotencyKey: 'k' }).pipe(dedupe(store)),
    );
    const results = await lastValueFrom(merge(...calls).pipe(toArray()));
    expect(results).toHaveLength(10);
    expect(fixture.effects.get('b')).toBe(1);
    expect(results.filter((result) => !result.meta.duplicate)).toHaveLength(1);
  });

  it('refuses the same key with other arguments, sending nothing', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    await firstValueFrom(
      fixture.tx.attempt$('counter', { key: 'c' }, { idempotencyKey: 'k' }).pipe(dedupe(store)),
    );
    const error = await expectFailure(
      firstValueFrom(
        fixture.tx.attempt$('counter', { key: 'other' }, { idempotencyKey: 'k' }).pipe(dedupe(store)),
      ),
    );
    expect(error).toMatchObject({ code: TxErrorCode.IdempotencyConflict, retryable: false });
    expect(error.meta?.status).toBe('rejected');
    expect(fixture.seen).toHaveLength(1);
  });

  it('scopes keys by tool', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    await firstValueFrom(
      fixture.tx.attempt$('counter', { key: 'd' }, { idempotencyKey: 'k' }).pipe(dedupe(store)),
    );
    const other = await firstValueFrom(
      fixture.tx.attempt$('echo', { value: 1 }, { idempotencyKey: 'k' }).pipe(dedupe(store)),
    );
    expect(other.meta.duplicate).toBe(false);
  });

  it('releases the key of a failed call, so the next call runs', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    const call = () =>
      fixture.tx.attempt$('flaky', { key: 'e', failTimes: 1 }, { idempotencyKey: 'k' }).pipe(dedupe(store));
    expect((await expectFailure(firstValueFrom(call()))).code).toBe(TxErrorCode.ToolError);
    const second = await firstValueFrom(call());
    expect(second.meta.duplicate).toBe(false);
    expect(fixture.effects.get('e')).toBe(2);
  });

  it('with cacheFailures, replays a failure instead of running again', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    const call = () =>
      fixture.tx
        .attempt$('flaky', { key: 'f', failTimes: 5, message: 'card declined' }, { idempotencyKey: 'k' })
        .pipe(dedupe(store, { cacheFailures: true }));
    await expectFailure(firstValueFrom(call()));
    const replayed = await expectFailure(firstValueFrom(call()));
    expect(replayed).toMatchObject({ code: TxErrorCode.ToolError, message: 'card declined' });
    expect(replayed.meta?.duplicate).toBe(true);
    expect(fixture.effects.get('f')).toBe(1);
  });

  it('releases the key when the caller unsubscribes, and cancels the call on the wire', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    const call = () => fixture.tx.attempt$('slow_effect', { key: 'g', ms: 5_000 }, { idempotencyKey: 'k' });
    const subscription = call().pipe(dedupe(store)).subscribe();
    await until(() => fixture.seen.length === 1);
    subscription.unsubscribe();
    await until(() => cancellations(fixture.received).length === 1);
    expect((await store.begin('slow_effect:k', 'any', 1)).status).toBe('new');
  });

  it('frees the key of a call switchMap dropped while the key was being taken (tx.call$)', async () => {
    fixture = await connectFixture();
    const queries = new Subject<string>();
    const answers: unknown[] = [];
    queries
      .pipe(switchMap((query) => fixture.tx.call$('counter', { key: query }, { idempotencyKey: query })))
      .subscribe((result) => answers.push(result.data));
    queries.next('stale');
    queries.next('fresh'); // replaces 'stale' at once, while its dedupe awaits the store
    await until(() => answers.length === 1);
    const again = await fixture.tx.call('counter', { key: 'stale' }, { idempotencyKey: 'stale' });
    expect(again.meta.duplicate).toBe(false);
    expect(fixture.effects.get('stale')).toBe(1);
  });

  it('lets a call that joined another run on its own when the other’s caller aborts its signal', async () => {
    fixture = await connectFixture();
    const controller = new AbortController();
    const args = { key: 'l', ms: 100 };
    const aborting = fixture.tx.call('slow_effect', args, { idempotencyKey: 'k', signal: controller.signal });
    const joining = fixture.tx.call$('slow_effect', args, { idempotencyKey: 'k' });
    const joined = firstValueFrom(joining);
    await until(() => fixture.effects.get('l') === 1);
    controller.abort();
    expect((await expectFailure(aborting)).code).toBe(TxErrorCode.Cancelled);
    const result = await joined;
    expect(result.meta).toMatchObject({
      requestId: joining.request.requestId,
      duplicate: false,
      attempts: 1,
    });
    expect(fixture.effects.get('l')).toBe(2);
  });

  it('cancels every caller of a shared call when they all abort, running it no more', async () => {
    fixture = await connectFixture();
    const controller = new AbortController();
    const call = () =>
      fixture.tx.call(
        'slow_effect',
        { key: 'n', ms: 100 },
        { idempotencyKey: 'k', signal: controller.signal },
      );
    const calls = [call(), call()].map(expectFailure);
    await until(() => fixture.effects.get('n') === 1);
    controller.abort();
    const errors = await Promise.all(calls);
    expect(errors.map((error) => error.code)).toEqual([TxErrorCode.Cancelled, TxErrorCode.Cancelled]);
    expect(fixture.effects.get('n')).toBe(1);
  });

  it('fails only the joined call whose own signal aborts while it waits; the shared call goes on', async () => {
    fixture = await connectFixture();
    const controller = new AbortController();
    const args = { key: 'p', ms: 100 };
    const first = fixture.tx.call('slow_effect', args, { idempotencyKey: 'k' });
    const joining = fixture.tx.call$('slow_effect', args, { idempotencyKey: 'k', signal: controller.signal });
    const joined = expectFailure(firstValueFrom(joining));
    await until(() => fixture.effects.get('p') === 1);
    controller.abort();
    const error = await joined;
    expect(error.code).toBe(TxErrorCode.Cancelled);
    expect(error.meta?.requestId).toBe(joining.request.requestId);
    expect((await first).meta).toMatchObject({ status: 'completed', duplicate: false });
    expect(fixture.effects.get('p')).toBe(1);
  });

  it('with cacheFailures, does not keep a call its caller aborted: the next call runs', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    const call = (signal?: AbortSignal) =>
      fixture.tx
        .attempt$('slow_effect', { key: 'o', ms: 50 }, { idempotencyKey: 'k', signal })
        .pipe(dedupe(store, { cacheFailures: true }));
    const controller = new AbortController();
    const aborted = expectFailure(firstValueFrom(call(controller.signal)));
    await until(() => fixture.effects.get('o') === 1);
    controller.abort();
    expect((await aborted).code).toBe(TxErrorCode.Cancelled);
    const next = await firstValueFrom(call());
    expect(next.meta.duplicate).toBe(false);
    expect(fixture.effects.get('o')).toBe(2);
  });

  it('gives a call that joined a failing call the failure with its own request id, as a duplicate', async () => {
    fixture = await connectFixture({ config: { retry: false } });
    const first = fixture.tx.call$('boom', { message: 'nope' }, { idempotencyKey: 'k' });
    const joining = fixture.tx.call$('boom', { message: 'nope' }, { idempotencyKey: 'k' });
    const [failed, joined] = await Promise.all(
      [first, joining].map((call) => expectFailure(firstValueFrom(call))),
    );
    expect(failed?.meta).toMatchObject({ requestId: first.request.requestId, duplicate: false, attempts: 1 });
    expect(joined?.meta).toMatchObject({
      requestId: joining.request.requestId,
      duplicate: true,
      attempts: 0,
    });
    expect(joined).toMatchObject({ code: failed?.code, message: failed?.message });
    expect(fixture.seen.filter((seen) => seen.tool === 'boom')).toHaveLength(1);
  });

  it('leaves calls without a key untouched', async () => {
    fixture = await connectFixture();
    const store = memoryIdempotencyStore();
    const call = fixture.tx.attempt$('counter', { key: 'h' });
    expect(call.pipe(dedupe(store))).toBe(call);
  });

  it('waits for a key held by another process, then replays its result', async () => {
    fixture = await connectFixture();
    const scheduler = new VirtualTimeScheduler();
    const store = memoryIdempotencyStore();
    const call = fixture.tx.attempt$('counter', { key: 'i' }, { idempotencyKey: 'k' });
    const print = fingerprint({ key: 'i' });
    await store.begin('counter:k', print, 60_000); // "another process" holds the key
    const waiting = { inProgress: { waitMs: 1_000, pollMs: 100 }, scheduler };
    const outcome = firstValueFrom(call.pipe(dedupe(store, waiting)));
    await advanceVirtual(scheduler, 350);
    const stored = {
      kind: 'result' as const,
      result: { content: [] },
      data: { count: 9 },
      meta: {} as never,
    };
    await store.complete('counter:k', print, stored, 60_000);
    await advanceVirtual(scheduler, 100);
    const result = await outcome;
    expect(result.data).toEqual({ count: 9 });
    expect(result.meta.duplicate).toBe(true);
    expect(fixture.seen).toHaveLength(0);
  });

  it('gives up with MCP_TX_IN_PROGRESS (retryable) when the other holder takes too long', async () => {
    fixture = await connectFixture();
    const scheduler = new VirtualTimeScheduler();
    const store = memoryIdempotencyStore();
    const call = fixture.tx.attempt$('counter', { key: 'j' }, { idempotencyKey: 'k' });
    const print = fingerprint({ key: 'j' });
    await store.begin('counter:k', print, 60_000);
    const waiting = { inProgress: { waitMs: 500, pollMs: 100 }, scheduler };
    const outcome = expectFailure(firstValueFrom(call.pipe(dedupe(store, waiting))));
    await advanceVirtual(scheduler, 1_000);
    expect(await outcome).toMatchObject({ code: TxErrorCode.InProgress, retryable: true });
    expect(fixture.seen).toHaveLength(0);
    expect(scheduler.actions).toHaveLength(0);
  });

  it('executes each (key, arguments) at most once and always refuses other arguments (property)', async () => {
    fixture = await connectFixture();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1 })), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.string({ minLength: 1, maxLength: 8 }),
        async (calls, run) => {
          const store = memoryIdempotencyStore();
          const firstArgs = new Map<number, number>();
          const before = fixture.seen.length;
          for (const [key, variant] of calls) {
            const args = { key: `p-${run}-${key}-${variant}` };
            const call = fixture.tx
              .attempt$('counter', args, { idempotencyKey: `k${key}` })
              .pipe(dedupe(store));
            const outcome = await firstValueFrom(call).catch((error: TxError) => error);
            const expected = firstArgs.get(key) ?? variant;
            firstArgs.set(key, expected);
            if (variant === expected) expect(outcome).not.toBeInstanceOf(TxError);
            else expect(outcome).toMatchObject({ code: TxErrorCode.IdempotencyConflict });
          }
          expect(fixture.seen.length - before).toBe(firstArgs.size);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('rejects a bad store or options at assembly', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    expect(() => dedupe({} as any)).toThrowError(expect.objectContaining({ field: 'store' }));
    expect(() => dedupe(memoryIdempotencyStore(), { inProgress: { waitMs: 1, pollMs: 0 } })).toThrowError(
      expect.objectContaining({ field: 'options.inProgress.pollMs' }),
    );
  });
});
