import { TxError, TxErrorCode } from './errors.js';

/**
 * `error` as `MCP_TX_STORE_UNAVAILABLE` (retryable), naming `store`; a `TxError` stays as it is.
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
