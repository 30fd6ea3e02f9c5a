import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { Observable, type Operator, type SchedulerLike, type Subscriber, type TeardownLogic } from 'rxjs';
import { classifyRejection, classifyToolError, resultText } from '../core/classify.js';
import { statusOf, TxError } from '../core/errors.js';
import { isoTime } from '../core/time.js';
import type { TxRequest, TxResult } from '../core/types.js';
import { MCP_TX_KEY, readWireResponseMeta, wireRequestMeta } from '../core/wire.js';
import { AttemptSignal } from './attemptSignal.js';
import { buildMeta, type CallTiming, failureMeta, lazyResult, successOutcome } from './result.js';

/**
 * A retry about to happen: attempt `attempt` failed with `error`; the next starts after `delayMs`.
 * Heard through `call.state.onRetry`.
 *
 * @example
 * call.state.onRetry(({ attempt, delayMs, error }) =>
 *   console.warn(`attempt ${attempt} failed (${error.code}); next in ${delayMs} ms`),
 * );
 */
export interface RetryEvent {
  /** The attempt that failed (1 for the first). */
  readonly attempt: number;
  /** The wait before the next attempt (ms): the backoff, or the server's retry-after hint. */
  readonly delayMs: number;
  readonly error: TxError;
}

/**
 * What the attempts of one logical call share: how many have started, when the first did, extra
 * request `_meta` entries operators add (a `traceparent`, say), and who wants to hear of retries.
 *
 * @example
 * const call = tx.attempt$('search', { q: 'rxjs' });
 * call.state.onRetry(({ attempt, delayMs }) => console.log(`retry after attempt ${attempt} in ${delayMs} ms`));
 */
export class TxCallState {
  attempts = 0;
  startedAtMs = 0;
  startedAt = '';
  /** Merged into the request's `_meta` of every attempt that starts after it is set. */
  readonly requestMeta: Record<string, unknown> = {};
  private retryListeners?: Set<(event: RetryEvent) => void>;

  /** Calls `listener` on every retry of this call until the returned function is called. */
  onRetry(listener: (event: RetryEvent) => void): () => void {
    this.retryListeners ??= new Set();
    this.retryListeners.add(listener);
    return () => this.retryListeners?.delete(listener);
  }

  /** Tells the listeners a retry is scheduled (called by the retry operator). */
  notifyRetry(event: RetryEvent): void {
    if (this.retryListeners === undefined) return;
    for (const listener of this.retryListeners) listener(event);
  }
}

/**
 * A cold Observable of one MCP tool call that knows its request. Subscribing sends it;
 * re-subscribing sends it again with the same `request_id` (that is a retry); unsubscribing cancels
 * it on the wire. Plain RxJS operators applied with `pipe` keep the request, so MCP-Tx operators
 * further down can still read it.
 *
 * @example
 * const call = tx.attempt$('search', { q: 'rxjs' });
 * console.log(call.request.requestId); // the uuid v7 every attempt will carry
 * call.subscribe(({ data, meta }) => console.log(data, meta.attempts));
 */
export class TxCall<R = CallToolResult> extends Observable<TxResult<R>> {
  constructor(
    /** The call's request: tool, arguments, ids and per-attempt options. */
    readonly request: TxRequest,
    /** What the call's attempts share: attempts so far, start time, request `_meta`, retry listeners. */
    readonly state: TxCallState,
    /** The client the call runs on. */
    readonly env: AttemptEnvironment,
    subscribe?: (this: Observable<TxResult<R>>, subscriber: Subscriber<TxResult<R>>) => TeardownLogic,
  ) {
    super(subscribe);
  }

  /** @internal RxJS builds every piped operator through `lift`; keeping the request here keeps it in pipelines. */
  override lift<T>(operator?: Operator<TxResult<R>, T>): Observable<T> {
    // biome-ignore lint/suspicious/noExplicitAny: the lifted call may emit anything the operator makes
    const lifted = new TxCall<any>(this.request, this.state, this.env);
    lifted.source = this;
    // biome-ignore lint/suspicious/noExplicitAny: RxJS types `operator` by the emitted value, which lift changes
    lifted.operator = operator as Operator<any, any>;
    return lifted as unknown as Observable<T>;
  }

  /** A new call of the same request whose subscription logic is `subscribe` (for operators). */
  derive<T = R>(subscribe: (subscriber: Subscriber<TxResult<T>>) => TeardownLogic): TxCall<T> {
    return new TxCall<T>(this.request, this.state, this.env, subscribe);
  }
}

/**
 * `error` carrying the call's metadata (attempts made so far, status), unless it already carries
 * some or is not a {@link TxError}. For operators that fail a call themselves.
 *
 * @example
 * catchError((error) => throwError(() => withCallMeta(call, error)))
 */
export function withCallMeta(call: TxCall<unknown>, error: unknown): unknown {
  if (!(error instanceof TxError) || error.meta !== undefined) return error;
  const meta = failureMeta(
    call.request,
    call.state,
    error,
    call.env.scheduler.now(),
    call.env.serverSupportsTx(),
  );
  return error.withMeta(meta);
}

/**
 * What an attempt, and the operators on it, need from the client it runs on. Every {@link TxCall}
 * carries its `env`; an operator reads it instead of taking the client again.
 *
 * @example
 * const call = tx.attempt$('search', { q: 'rxjs' });
 * const now = call.env.scheduler.now();
 * if (!call.env.serverSupportsTx()) console.log('plain MCP server: no server-side dedupe');
 */
export interface AttemptEnvironment {
  /** The connected SDK client attempts are sent with. */
  readonly client: Client;
  /** Whether the connected server advertises MCP-Tx (`experimental.mcp_tx`), asked at each attempt. */
  readonly serverSupportsTx: () => boolean;
  /**
   * Whether the connected server runs a repeated request (same idempotency key) at most once: it
   * advertises the `dedupe` feature, or the config's `trustServerDedupe` vouches for it. What makes
   * an ambiguous retry of a keyed call safe.
   */
  readonly serverDedupes: () => boolean;
  /** The config's retryable error markers, used to classify tool errors. */
  readonly retryableErrors: readonly string[];
  /** The client's scheduler: its clock stamps the metadata. */
  readonly scheduler: SchedulerLike;
  /** The tool's annotations from `tools/list` (listed once, cached); undefined when unknown. */
  readonly toolAnnotations: (name: string) => Promise<ToolAnnotations | undefined>;
  /**
   * The connection mcp-tx keeps for the client (`createMcpTx(connect)`): an attempt waits for it to
   * be connected before it is sent. None for a client the user connected.
   */
  readonly connection?: ConnectionGate;
}

/**
 * Whether attempts may be sent on a connection mcp-tx keeps, and how to wait until they may. An
 * attempt asks `connected` first (a field, on every attempt), and only when it is false waits with
 * `whenConnected`: that wait is not an attempt, and nothing is sent before it ends.
 *
 * @example
 * if (!gate.connected) {
 *   const stop = gate.whenConnected(5_000, (error) => (error ? fail(error) : send()));
 * }
 */
export interface ConnectionGate {
  /** Whether the connection is up: an attempt is sent at once. */
  readonly connected: boolean;
  /**
   * Calls `ready` once connected (no argument), or with the error that ends the wait: `timeoutMs`
   * passed without a connection (`MCP_TX_NETWORK_ERROR`, retryable, nothing sent), or the
   * connection was closed. May call it at once. Returns a function that stops waiting (then
   * `ready` is not called).
   */
  whenConnected(timeoutMs: number, ready: (error?: TxError) => void): () => void;
}

/** A cold Observable of exactly one attempt of `request` per subscription. */
export function attemptCall(env: AttemptEnvironment, request: TxRequest): TxCall {
  const state = new TxCallState();
  return new TxCall(request, state, env, (subscriber) => runAttempt(env, request, state, subscriber));
}

function startTiming(env: AttemptEnvironment, state: TxCallState): CallTiming {
  const nowMs = env.scheduler.now();
  if (state.attempts === 0) {
    state.startedAtMs = nowMs;
    state.startedAt = isoTime(nowMs);
  }
  state.attempts += 1;
  return { attempts: state.attempts, startedAt: state.startedAt, startedAtMs: state.startedAtMs, nowMs };
}

/** When this attempt is sent, ISO 8601: the first attempt's start, or now for a retry. */
function sentAt(timing: CallTiming): string {
  return timing.attempts === 1 ? timing.startedAt : isoTime(timing.nowMs);
}

function runAttempt(
  env: AttemptEnvironment,
  request: TxRequest,
  state: TxCallState,
  subscriber: Subscriber<TxResult>,
): TeardownLogic {
  const gate = env.connection;
  if (gate === undefined || gate.connected) return sendAttempt(env, request, state, subscriber);
  return sendWhenConnected(gate, env, request, state, subscriber);
}

/**
 * Waits for the connection, bounded by the attempt's timeout, then sends the attempt. The wait is
 * not an attempt: nothing is counted or stamped, and when it ends without a connection the error
 * (nothing was sent: not ambiguous) carries the call's metadata as it was.
 */
function sendWhenConnected(
  gate: ConnectionGate,
  env: AttemptEnvironment,
  request: TxRequest,
  state: TxCallState,
  subscriber: Subscriber<TxResult>,
): TeardownLogic {
  let cancelSend: (() => void) | undefined;
  const stopWaiting = gate.whenConnected(request.options.timeoutMs, (error) => {
    if (error === undefined) {
      cancelSend = sendAttempt(env, request, state, subscriber);
      return;
    }
    const meta = failureMeta(request, state, error, env.scheduler.now(), env.serverSupportsTx());
    subscriber.error(error.withMeta(meta));
  });
  return () => {
    stopWaiting();
    cancelSend?.();
  };
}

function sendAttempt(
  env: AttemptEnvironment,
  request: TxRequest,
  state: TxCallState,
  subscriber: Subscriber<TxResult>,
): () => void {
  // The call's own `signal` is watched around the whole call (see cancelledBy): aborting it
  // unsubscribes this attempt, whose teardown cancels it on the wire.
  const { timeoutMs, onProgress, resetTimeoutOnProgress } = request.options;
  const timing = startTiming(env, state);
  const supportsTx = env.serverSupportsTx();
  const signal = new AttemptSignal();
  let settled = false;

  const wire = supportsTx ? wireRequestMeta(request, timing.attempts - 1, sentAt(timing)) : undefined;
  env.client
    .callTool(
      { name: request.name, arguments: request.args, _meta: attemptMeta(state.requestMeta, wire) },
      undefined,
      { timeout: timeoutMs, signal: signal.asAbortSignal(), onprogress: onProgress, resetTimeoutOnProgress },
    )
    .then(
      (result) => {
        settled = true;
        const response = result as CallToolResult;
        const answer = supportsTx ? readWireResponseMeta(response) : undefined;
        const ended = { ...timing, nowMs: env.scheduler.now() };
        if (response.isError) {
          const error = classifyToolError(resultText(response.content), answer, env.retryableErrors);
          subscriber.error(failedAttempt(request, ended, supportsTx, error, answer?.ack ?? true));
          return;
        }
        const meta = buildMeta(request, ended, successOutcome(answer, supportsTx));
        subscriber.next(lazyResult(response, meta));
        subscriber.complete();
      },
      (error: unknown) => {
        settled = true;
        const ended = { ...timing, nowMs: env.scheduler.now() };
        subscriber.error(failedAttempt(request, ended, supportsTx, classifyRejection(error, signal.aborted)));
      },
    );

  return () => {
    if (settled) return;
    settled = true;
    signal.abort('unsubscribed');
  };
}

/** The request `_meta` of an attempt: what operators added, and the MCP-Tx block when the server speaks it. */
function attemptMeta(added: Record<string, unknown>, wire: unknown): Record<string, unknown> {
  if (isEmpty(added)) return wire === undefined ? {} : { [MCP_TX_KEY]: wire };
  return wire === undefined ? { ...added } : { ...added, [MCP_TX_KEY]: wire };
}

function isEmpty(record: Record<string, unknown>): boolean {
  for (const _ in record) return false;
  return true;
}

/** `error` with the metadata of the attempt it ended (`ack`: whether the server answered it). */
function failedAttempt(
  request: TxRequest,
  timing: CallTiming,
  serverSupportsTx: boolean,
  error: TxError,
  ack = false,
): TxError {
  const meta = buildMeta(request, timing, {
    ack,
    processed: false,
    duplicate: false,
    status: statusOf(error.code),
    serverSupportsTx,
    error,
  });
  return error.withMeta(meta);
}
