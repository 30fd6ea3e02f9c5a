import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { filter, firstValueFrom, type Observable, ReplaySubject, type SchedulerLike } from 'rxjs';
import type { ConnectionGate } from '../call/call.js';
import { TxError, TxErrorCode } from '../core/errors.js';
import { advertisesMcpTx } from '../core/wire.js';
import type { ConnectionState, ConnectionStatus } from './connectionState.js';

/**
 * The connection an McpTx calls on, as the McpTx sees it: where it stands (`state$`, replaying the
 * current value), the gate its attempts wait at (none for a client the user connected), and how it
 * ends. {@link ManagedConnection} makes and remakes one from a transport factory; a
 * {@link ClientConnection} is the user's connected client as it is.
 */
export interface TxConnection {
  readonly state$: Observable<ConnectionState>;
  readonly state: ConnectionState;
  readonly gate?: ConnectionGate;
  /** Starts connecting (once the McpTx listens to `state$`). */
  start(): void;
  /** Stops reconnecting: a connection lost from now on is closed, and one not connected now is closed at once. */
  beginClose(): void;
  /** Closes the connection (and its transport, and the process behind it); resolves once it is closed. */
  close(): Promise<void>;
}

/**
 * Where a connection stands, told through a replaying Observable: each change of state, attempt or
 * error is one value; `closed` is the last, then it completes.
 */
export class ConnectionStates {
  private current: ConnectionState;
  private readonly values = new ReplaySubject<ConnectionState>(1);
  /** Every value from the current one on; completes after `closed`. */
  readonly state$: Observable<ConnectionState> = this.values.asObservable();

  constructor(
    private readonly client: Client,
    private readonly scheduler: SchedulerLike,
    initial: ConnectionStatus,
    attempt: number,
  ) {
    this.current = this.make(initial, attempt, undefined, scheduler.now());
    this.values.next(this.current);
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Tells a new value; `since` moves only when the status changes. Nothing after `closed`. */
  next(state: ConnectionStatus, attempt: number, error?: TxError): void {
    if (this.current.state === 'closed') return;
    const since = state === this.current.state ? this.current.since : this.scheduler.now();
    this.current = this.make(state, attempt, error, since);
    this.values.next(this.current);
    if (state === 'closed') this.values.complete();
  }

  private make(
    state: ConnectionStatus,
    attempt: number,
    error: TxError | undefined,
    since: number,
  ): ConnectionState {
    const serverSupportsTx = advertisesMcpTx(this.client.getServerCapabilities());
    return Object.freeze(
      error === undefined
        ? { state, attempt, since, serverSupportsTx }
        : { state, attempt, since, error, serverSupportsTx },
    );
  }
}

/**
 * A client the user connected: `connected` (attempt 0) from the start, `closed` once the McpTx
 * closes it. mcp-tx does not watch or remake its connection, and its attempts do not wait.
 *
 * @example
 * const connection = new ClientConnection(client, asyncScheduler);
 * connection.state.state; // 'connected'
 */
export class ClientConnection implements TxConnection {
  private readonly states: ConnectionStates;
  readonly state$: Observable<ConnectionState>;

  constructor(
    private readonly client: Client,
    scheduler: SchedulerLike,
  ) {
    this.states = new ConnectionStates(client, scheduler, 'connected', 0);
    this.state$ = this.states.state$;
  }

  get state(): ConnectionState {
    return this.states.state;
  }

  start(): void {}

  beginClose(): void {}

  async close(): Promise<void> {
    try {
      await this.client.close();
    } finally {
      this.states.next('closed', 0);
    }
  }
}

/**
 * Resolves at the first `connected` value of `state$`; rejects with the connection's error when it
 * is `closed` first (`MCP_TX_CANCELLED` when it was closed by the user). Marked handled: nobody
 * has to listen to it.
 *
 * @example
 * const ready = firstConnected(connection.state$);
 */
export function firstConnected(state$: Observable<ConnectionState>): Promise<void> {
  const ready = firstValueFrom(
    state$.pipe(filter(({ state }) => state === 'connected' || state === 'closed')),
  ).then(({ state, error }) => {
    if (state === 'closed') {
      throw error ?? new TxError(TxErrorCode.Cancelled, 'The McpTx was closed before it connected');
    }
  });
  ready.catch(() => undefined);
  return ready;
}
