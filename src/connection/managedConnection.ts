/**
 * The connection mcp-tx owns: one state machine (connecting → connected → reconnecting → closed),
 * its connect loop with backoff, its triggers (transport close or error, session expiry, ping) and
 * the gate attempts wait at. Over 300 lines because these share one state and one set of timers:
 * split, each part would reach into the others' fields; the policy, the states and the replaying
 * connection of a user-managed client are in their own files.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { interval, type Observable, type SchedulerLike, type Subscription } from 'rxjs';
import type { ConnectionGate } from '../call/call.js';
import { isSessionNotFound } from '../core/classify.js';
import { TxError, TxErrorCode, validationError } from '../core/errors.js';
import { ConnectionStates, type TxConnection } from './connection.js';
import type { ConnectionState } from './connectionState.js';
import { type ResolvedReconnectPolicy, reconnectDelay } from './reconnectPolicy.js';

/**
 * Makes the transport of a new connection to the MCP server: called for the first connection and
 * for every reconnect, it must return a new, unstarted transport each time (mcp-tx starts it).
 *
 * @example
 * const connect: TransportFactory = () =>
 *   new StdioClientTransport({ command: 'node', args: ['server.js'] });
 * const tx = createMcpTx(connect);
 */
export type TransportFactory = () => Transport | Promise<Transport>;

/** What a {@link ManagedConnection} is made of. */
export interface ManagedConnectionOptions {
  /** The SDK client it connects (again and again: the same client across reconnects). */
  readonly client: Client;
  readonly connect: TransportFactory;
  /** How it reconnects; `false`: a lost connection is closed. */
  readonly reconnect: ResolvedReconnectPolicy | false;
  /** Ping the server this often while connected; a ping that fails ends the connection. */
  readonly pingIntervalMs?: number;
  readonly scheduler: SchedulerLike;
  /** The jitter's source, `Math.random` by default. */
  readonly random?: () => number;
}

/** One transport, from the attempt that made it to its end. */
interface Link {
  readonly attempt: number;
  /** `lost`: no longer used, its requests still being answered (see `afterSends`). */
  phase: 'connecting' | 'open' | 'lost' | 'ended';
  transport?: Transport;
  /** The transport reported its own close. */
  transportClosed: boolean;
  /** Aborts the `initialize` of an attempt under way. */
  readonly abort: AbortController;
  /** The attempt's time bound, while connecting. */
  deadline?: Subscription;
  /** The periodic ping, while open. */
  pings?: Subscription;
  probing: boolean;
  /** Requests whose sending has not settled (HTTP: no status yet); counted on session transports only. */
  sending: number;
  /** Called when `sending` drops to 0. */
  onSent?: () => void;
  /** The wait for the requests being sent, once lost. */
  draining?: Subscription;
}

interface Waiter {
  readonly ready: (error?: TxError) => void;
  readonly timer: Subscription;
}

/** When reconnecting is off, the time an attempt and a ping may take. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** How long a lost HTTP connection waits for the status of the requests it was sending. */
const SENDING_GRACE_MS = 1_000;

/**
 * The connection of `createMcpTx(connect)`: owns the SDK client's connection, makes it from the
 * transport factory, and makes it again — with the reconnect policy's backoff, on the McpTx's
 * scheduler — when it is lost:
 *
 * - the transport closes (a stdio server exits or is killed, an HTTP transport is closed);
 * - the server answers a request `404` for its session (expired, or the server restarted) — a new
 *   transport from the factory starts a new session with a fresh `initialize`;
 * - the transport reports another error (an HTTP stream breaks, the server is gone) and a ping
 *   then fails;
 * - a periodic ping (`pingIntervalMs`) fails.
 *
 * A request in flight when the connection is lost is rejected by the SDK (`Connection closed`);
 * over HTTP, the requests still being posted get their HTTP status first (at most a second), so
 * that one refused with `404` fails as not sent. The same `Client` is connected again each time,
 * so handlers registered on it stay. Attempts wait at the gate ({@link ConnectionGate}) while it is
 * not connected.
 *
 * @example
 * const connection = new ManagedConnection({ client, connect, reconnect: DEFAULT_RECONNECT_POLICY, scheduler });
 * connection.state$.subscribe(({ state, attempt }) => console.log(state, attempt));
 * connection.start();
 */
export class ManagedConnection implements TxConnection, ConnectionGate {
  /** Read by every attempt before it is sent. */
  connected = false;
  readonly gate: ConnectionGate = this;
  readonly state$: Observable<ConnectionState>;
  private readonly states: ConnectionStates;
  private readonly scheduler: SchedulerLike;
  private link?: Link;
  private backoff?: Subscription;
  private readonly waiters = new Set<Waiter>();
  private readonly used = new WeakSet<Transport>();
  /** Transports being closed: `close()` waits for them (and the processes behind them). */
  private readonly closing = new Set<Promise<void>>();
  private wasConnected = false;
  private factoryWorked = false;
  private stopping = false;
  /** What waiting attempts fail with once closed. */
  private closedError?: TxError;

  constructor(private readonly options: ManagedConnectionOptions) {
    this.scheduler = options.scheduler;
    this.states = new ConnectionStates(options.client, options.scheduler, 'connecting', 1);
    this.state$ = this.states.state$;
  }

  get state(): ConnectionState {
    return this.states.state;
  }

  start(): void {
    if (this.link === undefined && this.state.state === 'connecting') this.open(1);
  }

  whenConnected(timeoutMs: number, ready: (error?: TxError) => void): () => void {
    if (this.connected) {
      ready();
      return () => undefined;
    }
    if (this.closedError !== undefined) {
      ready(this.closedError);
      return () => undefined;
    }
    const waiter: Waiter = {
      ready,
      timer: this.scheduler.schedule(() => {
        this.waiters.delete(waiter);
        ready(this.notConnectedError(timeoutMs));
      }, timeoutMs),
    };
    this.waiters.add(waiter);
    return () => {
      if (this.waiters.delete(waiter)) waiter.timer.unsubscribe();
    };
  }

  beginClose(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.connected) this.finish(undefined);
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.finish(undefined);
    await Promise.all(this.closing);
  }

  /** Starts connection attempt `attempt`: the factory's transport, started and initialized, within the attempt's time bound. */
  private open(attempt: number): void {
    const link: Link = {
      attempt,
      phase: 'connecting',
      transportClosed: false,
      abort: new AbortController(),
      probing: false,
      sending: 0,
    };
    this.link = link;
    const timeoutMs = this.connectTimeoutMs();
    link.deadline = this.scheduler.schedule(() => {
      const error = new TxError(
        TxErrorCode.Timeout,
        `Could not connect to the MCP server within ${timeoutMs} ms (connectTimeoutMs)`,
        { retryable: true },
      );
      this.attemptFailed(link, error);
    }, timeoutMs);
    this.connectLink(link).catch((error: unknown) => this.attemptFailed(link, connectError(error)));
  }

  private async connectLink(link: Link): Promise<void> {
    let made: unknown;
    try {
      made = await this.options.connect();
    } catch (error) {
      if (link.phase === 'ended') return;
      // A factory that never made a transport is a mistake to report, not a server to wait for.
      if (this.factoryWorked) this.attemptFailed(link, connectError(error));
      else this.giveUp(link, factoryError(`threw: ${messageOf(error)}`, error));
      return;
    }
    if (!isTransport(made) || this.used.has(made)) {
      if (link.phase === 'ended') return;
      const reason = isTransport(made)
        ? 'returned a transport it returned before'
        : 'did not return a Transport';
      this.giveUp(
        link,
        factoryError(`${reason}: it must return a new MCP Transport (start, send, close) on each call`),
      );
      return;
    }
    const transport = made;
    this.used.add(transport);
    this.factoryWorked = true;
    if (link.phase === 'ended') {
      this.track(transport.close());
      return;
    }
    link.transport = transport;
    // Set before connecting: the SDK's Protocol chains its own handlers after these.
    transport.onclose = () => this.transportClosed(link);
    transport.onerror = (error) => this.transportError(link, error);
    if ('sessionId' in transport) countSends(link, transport);
    const timeout = this.connectTimeoutMs();
    try {
      await this.options.client.connect(transport, { signal: link.abort.signal, timeout });
    } catch (error) {
      this.attemptFailed(link, connectError(error));
      return;
    }
    this.opened(link);
  }

  private opened(link: Link): void {
    if (link !== this.link || link.phase !== 'connecting') return;
    if (link.transportClosed) {
      this.attemptFailed(link, lostError('The MCP server closed the connection as it was made'));
      return;
    }
    link.phase = 'open';
    link.deadline?.unsubscribe();
    this.wasConnected = true;
    this.connected = true;
    this.states.next('connected', 0);
    const { pingIntervalMs } = this.options;
    if (pingIntervalMs !== undefined) {
      link.pings = interval(pingIntervalMs, this.scheduler).subscribe(() => this.probe(link));
    }
    for (const waiter of [...this.waiters]) {
      if (!this.connected) break;
      this.waiters.delete(waiter);
      waiter.timer.unsubscribe();
      waiter.ready();
    }
  }

  private transportClosed(link: Link): void {
    link.transportClosed = true;
    // While connecting, the SDK rejects the connect: the attempt fails there.
    if (link === this.link && link.phase === 'open') {
      this.lost(
        link,
        lostError('The connection to the MCP server closed (the server exited or the transport ended)'),
      );
    }
  }

  /**
   * A request the server answered `404` (it does not know the session) ends the connection. Any
   * other transport error may be nothing (a bad message) or the end (a broken stream, a server
   * gone, a stream refused with `404`): a ping tells.
   */
  private transportError(link: Link, error: Error): void {
    if (link !== this.link || link.phase !== 'open') return;
    if (isSessionNotFound(error) && error.message.includes('POST')) this.lost(link, sessionLostError(error));
    else this.probe(link, error);
  }

  private probe(link: Link, cause?: Error): void {
    if (link.probing) return;
    link.probing = true;
    const timeoutMs = this.probeTimeoutMs();
    const abort = new AbortController();
    const timer = this.scheduler.schedule(() => abort.abort(), timeoutMs);
    const settle = () => {
      link.probing = false;
      timer.unsubscribe();
    };
    this.options.client.ping({ signal: abort.signal, timeout: timeoutMs }).then(settle, (error: unknown) => {
      settle();
      if (link !== this.link || link.phase !== 'open') return;
      this.lost(link, pingError(error, abort.signal.aborted ? timeoutMs : undefined, cause));
    });
  }

  /**
   * The open connection `link` is lost: nothing more is sent on it, and it is made again, unless
   * closing or reconnecting is off. The requests it was still sending (over HTTP) get their status
   * first, so that one the server refused (`404`: it did not run it) fails as such, not as a
   * connection closed under it (which may have run).
   */
  private lost(link: Link, error: TxError): void {
    this.connected = false;
    link.phase = 'lost';
    link.pings?.unsubscribe();
    const { reconnect } = this.options;
    if (this.stopping || reconnect === false) {
      this.finish(this.stopping ? undefined : error, reconnect === false ? 'reconnect is off' : undefined);
      return;
    }
    this.states.next('reconnecting', 1, error);
    this.afterSends(link, () => {
      if (link.phase !== 'lost') return;
      this.retire(link);
      this.scheduleAttempt(1);
    });
  }

  /** Runs `then` once `link` sends nothing (at most {@link SENDING_GRACE_MS}), after the senders heard how it went. */
  private afterSends(link: Link, then: () => void): void {
    if (link.sending === 0) {
      then();
      return;
    }
    const proceed = () => {
      link.onSent = undefined;
      link.draining?.unsubscribe();
      // A macrotask later: the request whose sending just failed is rejected with its own error first.
      link.draining = this.scheduler.schedule(then, 0);
    };
    link.onSent = proceed;
    link.draining = this.scheduler.schedule(proceed, Math.min(SENDING_GRACE_MS, this.probeTimeoutMs()));
  }

  private attemptFailed(link: Link, error: TxError): void {
    if (link !== this.link || link.phase === 'ended') return;
    this.retire(link);
    if (this.stopping) return;
    const { reconnect } = this.options;
    if (reconnect === false || link.attempt >= reconnect.maxAttempts) {
      this.giveUp(link, error);
      return;
    }
    const next = link.attempt + 1;
    this.states.next(this.wasConnected ? 'reconnecting' : 'connecting', next, error);
    this.scheduleAttempt(next);
  }

  private scheduleAttempt(attempt: number): void {
    const policy = this.options.reconnect;
    if (policy === false) return;
    const delay = reconnectDelay(policy, attempt, this.wasConnected, this.options.random);
    this.backoff = this.scheduler.schedule(() => {
      this.backoff = undefined;
      if (!this.stopping) this.open(attempt);
    }, delay);
  }

  private giveUp(link: Link, error: TxError): void {
    if (link.phase !== 'ended') this.retire(link);
    const { reconnect } = this.options;
    const detail =
      error.code === TxErrorCode.Validation
        ? undefined
        : reconnect === false
          ? 'reconnect is off'
          : `gave up after ${link.attempt} attempt${link.attempt === 1 ? '' : 's'} (maxAttempts)`;
    this.finish(error, detail, link.attempt);
  }

  /** Closed for good: no timer left, the transport closing, waiting attempts failed. */
  private finish(error: TxError | undefined, detail?: string, attempt = 0): void {
    if (this.state.state === 'closed') return;
    this.connected = false;
    this.backoff?.unsubscribe();
    this.backoff = undefined;
    if (this.link !== undefined && this.link.phase !== 'ended') this.retire(this.link);
    this.closedError = closedError(error, detail);
    this.states.next('closed', attempt, error);
    for (const waiter of [...this.waiters]) {
      this.waiters.delete(waiter);
      waiter.timer.unsubscribe();
      waiter.ready(this.closedError);
    }
  }

  /**
   * Ends `link`: its timers stopped, its `initialize` aborted, the SDK client let go of its
   * transport at once (rejecting the requests in flight) so that the next one can be connected,
   * and the transport closed (a stdio child ends) in the background.
   */
  private retire(link: Link): void {
    if (link.phase === 'connecting') link.abort.abort();
    link.phase = 'ended';
    link.deadline?.unsubscribe();
    link.pings?.unsubscribe();
    link.draining?.unsubscribe();
    link.onSent = undefined;
    const { transport } = link;
    if (transport === undefined) return;
    const release = transport.onclose;
    transport.onclose = undefined;
    transport.onerror = undefined;
    if (!link.transportClosed && this.options.client.transport === transport) release?.();
    this.track(transport.close());
  }

  private track(closing: Promise<void>): void {
    const settled = closing.catch(() => undefined).finally(() => this.closing.delete(settled));
    this.closing.add(settled);
  }

  private connectTimeoutMs(): number {
    const { reconnect } = this.options;
    return reconnect === false ? DEFAULT_CONNECT_TIMEOUT_MS : reconnect.connectTimeoutMs;
  }

  private probeTimeoutMs(): number {
    const { pingIntervalMs } = this.options;
    return Math.min(this.connectTimeoutMs(), pingIntervalMs ?? Infinity);
  }

  private notConnectedError(timeoutMs: number): TxError {
    const { state, attempt, error } = this.state;
    const last = error === undefined ? '' : `; last error: ${error.message}`;
    return new TxError(
      TxErrorCode.NetworkError,
      `Not connected to the MCP server: no connection within the attempt's ${timeoutMs} ms (${state}, attempt ${attempt}${last})`,
      { retryable: true, ambiguous: false, cause: error },
    );
  }
}

/** Counts the requests `transport` is sending on `link` (a session transport: its sending ends with the HTTP status). */
function countSends(link: Link, transport: Transport): void {
  const send = transport.send.bind(transport);
  const sent = () => {
    link.sending -= 1;
    if (link.sending === 0) link.onSent?.();
  };
  transport.send = (message, options) => {
    if (!('method' in message && 'id' in message)) return send(message, options);
    link.sending += 1;
    const sending = send(message, options);
    sending.then(sent, sent);
    return sending;
  };
}

function isTransport(value: unknown): value is Transport {
  const candidate = value as Partial<Transport> | null | undefined;
  return (
    typeof candidate?.start === 'function' &&
    typeof candidate.send === 'function' &&
    typeof candidate.close === 'function'
  );
}

/** An error's message, and its cause's (`fetch failed (connect ECONNREFUSED 127.0.0.1:3000)`). */
function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}

function factoryError(reason: string, cause?: unknown): TxError {
  const error = validationError('connect', `the transport factory ${reason}`);
  return cause === undefined ? error : error.withCause(cause);
}

function connectError(error: unknown): TxError {
  if (error instanceof TxError) return error;
  return new TxError(TxErrorCode.NetworkError, `Could not connect to the MCP server: ${messageOf(error)}`, {
    retryable: true,
    cause: error,
  });
}

/** Why a ping ended the connection: the session is unknown (HTTP 404), no answer in time, or another failure. */
function pingError(error: unknown, timedOutAfterMs: number | undefined, transportError?: Error): TxError {
  if (isSessionNotFound(error)) return sessionLostError(error);
  const reason = timedOutAfterMs === undefined ? messageOf(error) : `no answer within ${timedOutAfterMs} ms`;
  const after = transportError === undefined ? '' : ` after a transport error (${transportError.message})`;
  return lostError(`The MCP server did not answer a ping${after}: ${reason}`, error);
}

function sessionLostError(cause: unknown): TxError {
  return lostError(
    'The MCP server does not know the session any more (HTTP 404): a new one is started',
    cause,
  );
}

function lostError(message: string, cause?: unknown): TxError {
  return new TxError(TxErrorCode.NetworkError, message, { retryable: true, cause });
}

/** What a call waiting for a connection that is closed fails with. */
function closedError(error: TxError | undefined, detail: string | undefined): TxError {
  if (error === undefined) {
    return new TxError(TxErrorCode.Cancelled, 'The McpTx was closed: the call was not sent');
  }
  if (error.code === TxErrorCode.Validation) return error;
  return new TxError(
    TxErrorCode.NetworkError,
    `Not connected to the MCP server, and no longer connecting${detail === undefined ? '' : ` (${detail})`}: ${error.message}`,
    { retryable: false, ambiguous: false, cause: error },
  );
}
