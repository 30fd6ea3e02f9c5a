import { Observable, type Subscriber } from 'rxjs';
import { TxError, TxErrorCode } from '../core/errors.js';
import type { Limiter, Permit } from './limiter.js';

/** The error of a call that finds `waiting` calls already queued, the most allowed. */
export function queueFullError(waiting: number): TxError {
  return new TxError(TxErrorCode.RateLimited, `Rate limit queue is full (${waiting} calls waiting)`);
}

/**
 * The FIFO queue behind the in-process limiters: a call starts at once when nobody waits and
 * `tryTake()` grants it, else it queues (up to `maxQueue`) and is admitted in order as `admitWaiting`
 * finds room. Subclasses say what room is (`tryTake`), what a permit gives back, and when to look again.
 */
export abstract class WaitQueue implements Limiter {
  private readonly waiting = new Set<Subscriber<Permit>>();

  constructor(private readonly maxQueue: number) {}

  /** Calls waiting for a permit. */
  get queued(): number {
    return this.waiting.size;
  }

  /**
   * A permit at once when nobody waits and there is room; else a place in the FIFO queue (given up on
   * unsubscribe), or `MCP_TX_RATE_LIMITED` when `maxQueue` calls already wait.
   */
  acquire(): Observable<Permit> {
    return new Observable<Permit>((subscriber) => {
      const permit = this.tryAcquire();
      if (permit !== undefined) return this.grant(subscriber, permit);
      if (this.waiting.size >= this.maxQueue) {
        subscriber.error(queueFullError(this.waiting.size));
        return;
      }
      this.waiting.add(subscriber);
      this.waitingChanged();
      return () => {
        if (this.waiting.delete(subscriber)) this.waitingChanged();
      };
    });
  }

  /** A permit now when nobody waits and there is room; else `undefined` (`acquire()` queues). */
  tryAcquire(): Permit | undefined {
    return this.waiting.size === 0 && this.tryTake() ? this.permit() : undefined;
  }

  /** Takes room for one call if there is some. */
  protected abstract tryTake(): boolean;
  /** The permit of a call that took room. */
  protected abstract permit(): Permit;
  /** The queue changed: arrange to look again (a timer), or do nothing when a release will. */
  protected abstract waitingChanged(): void;

  /** Admits waiting calls in order while there is room. */
  protected admitWaiting(): void {
    for (const subscriber of this.waiting) {
      if (!this.tryTake()) break;
      this.waiting.delete(subscriber);
      this.grant(subscriber, this.permit());
    }
    this.waitingChanged();
  }

  private grant(subscriber: Subscriber<Permit>, permit: Permit): void {
    subscriber.next(permit);
    subscriber.complete();
  }
}
