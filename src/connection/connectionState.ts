import type { TxError } from '../core/errors.js';

/**
 * Where an `McpTx`'s connection to its server stands:
 *
 * - `connecting`: the first connection is being made.
 * - `connected`: calls are sent.
 * - `reconnecting`: the connection was lost (the server exited, the HTTP session expired, a ping
 *   failed) and a new one is being made, with backoff; calls wait, bounded by their timeout.
 * - `closed`: `tx.close()` was called, or reconnecting gave up (`maxAttempts`, or a `connect`
 *   factory that is not usable); calls fail.
 *
 * @example
 * tx.connection$.subscribe(({ state, attempt, error }) => console.log(state, attempt, error?.code));
 */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/**
 * One value of `tx.connection$`: the state, since when (ms on the McpTx's scheduler clock; it moves
 * only when the state changes), the connection attempt under way or next (1 for the first; 0 once
 * connected; on `closed`, the last attempt when reconnecting gave up, else 0), the error that ended
 * the last connection or attempt (none while connected, nor after `tx.close()`), and whether the
 * server advertises MCP-Tx (read again on every connect; the last server's while not connected).
 *
 * @example
 * const { state, since, serverSupportsTx } = await firstValueFrom(tx.connection$);
 */
export interface ConnectionState {
  readonly state: ConnectionStatus;
  readonly attempt: number;
  readonly since: number;
  readonly error?: TxError;
  readonly serverSupportsTx: boolean;
}
