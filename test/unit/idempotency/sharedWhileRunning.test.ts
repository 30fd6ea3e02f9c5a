import { finalize, Observable, of, Subject, take, throwError } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { sharedWhileRunning } from '../../../src/idempotency/sharedWhileRunning.js';

/** A source that runs until `events` ends it, counting how often it was started and stopped. */
function counted() {
  const events = new Subject<string>();
  const counts = { started: 0, stopped: 0, ends: 0 };
  const source = new Observable<string>((subscriber) => {
    counts.started += 1;
    return events.subscribe(subscriber);
  }).pipe(finalize(() => (counts.stopped += 1)));
  const shared = sharedWhileRunning(source, () => (counts.ends += 1));
  return { events, counts, shared };
}

describe('sharedWhileRunning', () => {
  it('runs the source once for all its subscribers, calling onEnd once, before they hear of it', () => {
    const { events, counts, shared } = counted();
    const heard: string[] = [];
    shared.subscribe({ next: (value) => heard.push(`a ${value} (ends ${counts.ends})`) });
    shared.subscribe({
      next: (value) => heard.push(`b ${value}`),
      complete: () => heard.push('b done'),
    });
    events.next('x');
    events.complete();
    expect(heard).toEqual(['a x (ends 1)', 'b x', 'b done']);
    expect(counts).toEqual({ started: 1, stopped: 1, ends: 1 });
  });

  it('goes on while one subscriber is left, and stops when the last leaves', () => {
    const { counts, shared } = counted();
    const first = shared.subscribe();
    const second = shared.subscribe();
    first.unsubscribe();
    expect(counts).toEqual({ started: 1, stopped: 0, ends: 0 });
    second.unsubscribe();
    expect(counts).toEqual({ started: 1, stopped: 1, ends: 1 });
  });

  it('starts another run for a subscriber after a run ended', () => {
    const { events, counts, shared } = counted();
    const errors: unknown[] = [];
    shared.subscribe({ error: (error) => errors.push(error) });
    events.error(new Error('down'));
    shared.subscribe({ error: (error) => errors.push(error) }); // events has ended: the new run fails at once
    expect(counts).toEqual({ started: 2, stopped: 2, ends: 2 });
    expect(errors).toEqual([new Error('down'), new Error('down')]);
  });

  it('gives a failure to every subscriber', () => {
    const shared = sharedWhileRunning(
      throwError(() => new Error('no')),
      () => {},
    );
    const errors: unknown[] = [];
    shared.subscribe({ error: (error) => errors.push(error) });
    expect(errors).toEqual([new Error('no')]);
  });

  it('copes with a source that emits as it is subscribed, and with a subscriber that leaves then', () => {
    let ends = 0;
    const shared = sharedWhileRunning(of(1, 2), () => (ends += 1));
    const values: number[] = [];
    shared.pipe(take(1)).subscribe((value) => values.push(value)); // leaves during the first emission
    shared.subscribe((value) => values.push(value * 10));
    expect(values).toEqual([1, 10, 20]);
    expect(ends).toBe(2);
  });
});
