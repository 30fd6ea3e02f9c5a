import { TxError, TxErrorCode } from './errors.js';

/**
 * `error` as `MCP_TX_STORE_UNAVAILABLE` (retryable), naming `store`; a `TxError` stays as it is.
 * Retryable says a later try may succeed; `retryWithPolicy` still does not retry a store failure of
 * this process unless its policy names the code (the next attempt would wait on the same store).
 *
 * @example
 * subscriber.error(storeUnavailable('Event store', error));
 */
export function storeUnavailable(store: string, error: unknown): TxError {
  if (error instanceof TxError) return error;
  return new TxError(TxErrorCode.StoreUnavailable, `${store} unavailable: ${String(error)}`, {
    retryable: true,
    cause: error,
  });
}

/**
 * `operation`, failing with `MCP_TX_STORE_UNAVAILABLE` (retryable) when it fails or once
 * `timeoutMs` has passed: a store down or stalled answers in bounded time, whatever its client's
 * own retry and offline-queue settings (ioredis's defaults queue a command for over a minute while
 * Redis is down). The timer is cleared when the operation settles and never keeps the process alive.
 *
 * @example
 * const outcome = await withinDeadline(redis.get(key), 2_000, 'Idempotency store');
 */
export function withinDeadline<T>(operation: Promise<T>, timeoutMs: number, store: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TxError(TxErrorCode.StoreUnavailable, `${store} did not answer within ${timeoutMs} ms`, {
            retryable: true,
          }),
        ),
      timeoutMs,
    );
    timer.unref();
  });
  return Promise.race([operation, deadline])
    .catch((error: unknown) => {
      throw storeUnavailable(store, error);
    })
    .finally(() => clearTimeout(timer));
}

/**
 * How a part on a shared store (a Redis rate limiter or circuit breaker) meets a store failure:
 *
 * - `failOpen`: go on without the store (the part says what that means) instead of failing calls;
 * - `onStoreError`: told of every store failure (a `MCP_TX_STORE_UNAVAILABLE` error), failing open
 *   or not; a hook that throws is ignored.
 *
 * @example
 * const outage = new StoreOutage('Rate limiter', 'calls go on unthrottled', { failOpen: true });
 */
export interface StoreFailureOptions {
  readonly failOpen: boolean;
  readonly onStoreError?: ((error: TxError) => void) | undefined;
}

/**
 * The outage of a store, as a part failing open sees it: down from a failure until the store answers
 * again. Each failure goes to `onStoreError`; failing open without that hook, a process warning
 * (code `MCP_TX_STORE_FAIL_OPEN`) says once per outage that calls go on without the store. While
 * down, {@link check} asks the store one request at a time, so that a part failing open need not
 * wait `commandTimeoutMs` on every call to learn that the store is still down.
 *
 * @example
 * const outage = new StoreOutage('Circuit breaker store', 'calls go through uncounted', settings);
 * if (outage.isDown) outage.check(() => withinDeadline(redis.ping(), 2_000, 'Circuit breaker store'));
 */
export class StoreOutage {
  private down = false;
  private checking = false;

  constructor(
    private readonly store: string,
    private readonly failingOpenMeans: string,
    private readonly options: StoreFailureOptions,
  ) {}

  /** Whether the store's last answer was a failure (until it answers again). */
  get isDown(): boolean {
    return this.down;
  }

  /** The store failed with `error` (made `MCP_TX_STORE_UNAVAILABLE` if it is not yet): report it. */
  failed(error: unknown): void {
    const failure = storeUnavailable(this.store, error);
    const first = !this.down;
    this.down = true;
    const { failOpen, onStoreError } = this.options;
    if (onStoreError !== undefined) {
      try {
        onStoreError(failure);
      } catch {
        // the hook is the user's: its failure must not change what the calls see
      }
    } else if (failOpen && first) {
      globalThis.process?.emitWarning?.(
        `mcp-tx: ${this.store} unavailable, failing open: ${this.failingOpenMeans} until it answers again ` +
          `(${failure.message}); pass onStoreError to handle this yourself`,
        { code: 'MCP_TX_STORE_FAIL_OPEN' },
      );
    }
  }

  /** The store answered: the outage, if there was one, is over. */
  answered(): void {
    this.down = false;
  }

  /** While down, asks the store with `ask` (bounded by the caller), one request at a time; an answer ends the outage. */
  check(ask: () => Promise<unknown>): void {
    if (!this.down || this.checking) return;
    this.checking = true;
    let asking: Promise<unknown>;
    try {
      asking = ask();
    } catch (error) {
      asking = Promise.reject(error);
    }
    asking.then(
      () => {
        this.checking = false;
        this.answered();
      },
      (error: unknown) => {
        this.checking = false;
        this.failed(error);
      },
    );
  }
}
