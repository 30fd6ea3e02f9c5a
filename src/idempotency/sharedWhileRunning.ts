import { Observable, type Subscriber, Subscription } from 'rxjs';

/** One run of a shared source: who is subscribed to it, and the subscription to the source. */
interface SharedRun<T> {
  readonly subscribers: Subscriber<T>[];
  connection?: Subscription;
  ended?: true;
}

/**
 * `source` shared by its subscribers while it runs: what `share()` does, at a fraction of its cost
 * (it runs on every keyed call). The first subscriber starts a run, later ones join it, the last to
 * leave unsubscribes it; a subscriber after a run ended starts another. `onEnd` is called once a
 * run: before its first event reaches the subscribers, or when the last leaves before any. `dedupe`
 * shares a key's execution so with the calls that join it.
 *
 * @example
 * const execution = sharedWhileRunning(run$, () => inFlight.delete(key));
 * inFlight.set(key, execution);
 */
export function sharedWhileRunning<T>(source: Observable<T>, onEnd: () => void): Observable<T> {
  let current: SharedRun<T> | undefined;
  const end = (run: SharedRun<T>, closes: boolean) => {
    if (closes && current === run) current = undefined;
    if (run.ended) return;
    run.ended = true;
    onEnd();
  };
  return new Observable<T>((subscriber) => {
    const run: SharedRun<T> = current ?? { subscribers: [] };
    current = run;
    run.subscribers.push(subscriber);
    const deliver = (closes: boolean, send: (to: Subscriber<T>) => void) => {
      end(run, closes);
      for (const to of run.subscribers.slice()) send(to);
    };
    if (run.connection === undefined) {
      run.connection = Subscription.EMPTY; // taken: a subscriber that arrives during a synchronous emission joins
      run.connection = source.subscribe({
        next: (value) => deliver(false, (to) => to.next(value)),
        error: (error: unknown) => deliver(true, (to) => to.error(error)),
        complete: () => deliver(true, (to) => to.complete()),
      });
      if (run.subscribers.length === 0) run.connection.unsubscribe(); // all left during a synchronous emission
    }
    return () => {
      run.subscribers.splice(run.subscribers.indexOf(subscriber), 1);
      if (run.subscribers.length > 0 || current !== run) return;
      end(run, true);
      run.connection?.unsubscribe();
    };
  });
}
