import * as z from 'zod';
import { MaxQueueSchema, parseOrThrow } from '../config/validators.js';
import type { Permit } from './limiter.js';
import { WaitQueue } from './waitQueue.js';

const ConcurrencyLimitOptionsSchema = z.strictObject({
  maxConcurrent: z.number().int('must be a whole number').min(1, 'must be at least 1'),
  maxQueue: MaxQueueSchema,
});

/**
 * Options of {@link concurrencyLimit}:
 *
 * - `maxConcurrent` (required): calls that may run at once, at least 1.
 * - `maxQueue` (no bound): calls that may wait; past it a call fails with `MCP_TX_RATE_LIMITED`.
 *
 * @example
 * const limit = concurrencyLimit({ maxConcurrent: 8, maxQueue: 1_000 });
 */
export type ConcurrencyLimitOptions = z.input<typeof ConcurrencyLimitOptionsSchema>;

/**
 * At most `maxConcurrent` calls at once (the Python MCP-Tx `max_concurrent_requests`); the others
 * wait in FIFO order, up to `maxQueue`, past which a call fails with `MCP_TX_RATE_LIMITED`. A call's
 * place is freed when it completes, fails or is unsubscribed.
 *
 * @example
 * const limit = concurrencyLimit({ maxConcurrent: 8 });
 * tx.attempt$('render', args).pipe(throttle(limit));
 */
export function concurrencyLimit(options: ConcurrencyLimitOptions): ConcurrencyLimit {
  const { maxConcurrent, maxQueue } = parseOrThrow(ConcurrencyLimitOptionsSchema, options, 'options');
  return new ConcurrencyLimit(maxConcurrent, maxQueue);
}

/**
 * See {@link concurrencyLimit}.
 *
 * @example
 * const limit = concurrencyLimit({ maxConcurrent: 4 });
 * console.log(limit.active, limit.queued);
 */
export class ConcurrencyLimit extends WaitQueue {
  private running = 0;

  constructor(
    private readonly maxConcurrent: number,
    maxQueue: number,
  ) {
    super(maxQueue);
  }

  /** Calls holding a permit now. */
  get active(): number {
    return this.running;
  }

  protected tryTake(): boolean {
    if (this.running >= this.maxConcurrent) return false;
    this.running += 1;
    return true;
  }

  protected permit(): Permit {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.running -= 1;
        this.admitWaiting();
      },
    };
  }

  protected waitingChanged(): void {
    // A release admits the next call; there is nothing to wait for in time.
  }
}
