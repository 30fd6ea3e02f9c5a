import type { ConnectionState, ConnectionStatus } from '../connection/connectionState.js';
import { isoTime } from '../core/time.js';

/**
 * How an `McpTx`'s connection has been doing, as `report().connection` says once the monitor has
 * been told of it (`recordConnection`, which an `McpTx` whose `monitor` it is calls for every
 * `connection$` value):
 *
 * - `state`: where it stands now; `since`: when it got there (ISO 8601, the monitor's clock).
 * - `attempt`: the connection attempt it is on while `connecting` or `reconnecting` (1 for the
 *   first); 0 once connected.
 * - `reconnects`: how many times it connected again after losing a connection.
 * - `disconnectedMs`: the time spent without a connection once the first one was made
 *   (`reconnecting`, and `closed` after having been connected), the disconnection under way
 *   included; the first `connecting` is not a disconnection.
 * - `errorCode`: while not connected, the code of the error that ended the last connection or
 *   attempt (`MCP_TX_NETWORK_ERROR`, …).
 *
 * @example
 * const { connection } = health.report();
 * if (connection?.state === 'reconnecting') console.warn(`reconnecting (attempt ${connection.attempt})`);
 * console.log(`${connection?.reconnects} reconnects, ${connection?.disconnectedMs} ms without a server`);
 */
export interface ConnectionHealth {
  readonly state: ConnectionStatus;
  readonly since: string;
  readonly attempt: number;
  readonly reconnects: number;
  readonly disconnectedMs: number;
  readonly errorCode?: string;
}

interface Current {
  readonly state: ConnectionStatus;
  readonly since: number;
  readonly attempt: number;
  readonly errorCode: string | undefined;
}

/**
 * Counts a connection's reconnects and the time it spent disconnected, from its `connection$`
 * values and the times they were seen at. Only changes of state count: the same state told again
 * (another `reconnecting` attempt, a replayed `connected`) moves nothing but `attempt`.
 *
 * @example
 * const tracker = new ConnectionTracker();
 * tracker.record(state, scheduler.now()); // true when this value is a reconnect
 * tracker.report(scheduler.now());
 */
export class ConnectionTracker {
  private current: Current | undefined;
  private everConnected = false;
  private reconnects = 0;
  private disconnectedMs = 0;
  /** When the disconnection under way began, if there is one after a first connection. */
  private disconnectedSince: number | undefined;

  /** Takes one `connection$` value seen at `now`; says whether it is a reconnect. */
  record(value: ConnectionState, now: number): boolean {
    const changed = this.current?.state !== value.state;
    this.current = {
      state: value.state,
      since: changed || this.current === undefined ? now : this.current.since,
      attempt: value.attempt,
      errorCode: value.state === 'connected' ? undefined : value.error?.code,
    };
    if (value.state !== 'connected') {
      if (this.everConnected) this.disconnectedSince ??= now;
      return false;
    }
    if (!changed) return false;
    if (this.disconnectedSince !== undefined) {
      this.disconnectedMs += Math.max(0, now - this.disconnectedSince);
      this.disconnectedSince = undefined;
    }
    const reconnect = this.everConnected;
    this.everConnected = true;
    if (reconnect) this.reconnects += 1;
    return reconnect;
  }

  /** The figures at `now`, or undefined when no value was recorded. */
  report(now: number): ConnectionHealth | undefined {
    const { current } = this;
    if (current === undefined) return undefined;
    const ongoing = this.disconnectedSince === undefined ? 0 : Math.max(0, now - this.disconnectedSince);
    return {
      state: current.state,
      since: isoTime(current.since),
      attempt: current.attempt,
      reconnects: this.reconnects,
      disconnectedMs: this.disconnectedMs + ongoing,
      ...(current.errorCode === undefined ? {} : { errorCode: current.errorCode }),
    };
  }
}
