/**
 * `createMcpTx` and the McpTx facade. Over 300 lines because the facade is one object whose parts
 * share its state (the calls in flight, the connection, the per-tool policies, close's drain); each
 * concern it delegates lives elsewhere: merging in resolve.ts, the pipeline in pipeline.ts, the
 * connection in src/connection/, tasks in src/tasks/.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Task, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { asyncScheduler, firstValueFrom, type Observable, type SchedulerLike, type Subscriber } from 'rxjs';
import { AttemptSignal } from '../call/attemptSignal.js';
import {
  type AttemptEnvironment,
  attemptCall,
  type ConnectionGate,
  TxCall,
  TxCallState,
  withCallMeta,
} from '../call/call.js';
import { cancelledBy } from '../call/cancellation.js';
import { failureMeta } from '../call/result.js';
import { assertToolName } from '../config/toolInput.js';
import { parseOrThrow } from '../config/validators.js';
import { ClientConnection, firstConnected, type TxConnection } from '../connection/connection.js';
import type { ConnectionState } from '../connection/connectionState.js';
import { ManagedConnection, type TransportFactory } from '../connection/managedConnection.js';
import { TxError, TxErrorCode, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import type { JsonObject, TxRequest, TxResult } from '../core/types.js';
import { advertisesMcpTx, mcpTxClientCapabilities, serverDedupes } from '../core/wire.js';
import { type ResumeOptions, TaskClient } from '../tasks/taskClient.js';
import type { PendingTask, TaskEvent, TaskOnlyOptions } from '../tasks/taskOptions.js';
import { withoutCancellation } from '../transport/withoutCancellation.js';
import { defaultClientInfo } from './clientInfo.js';
import { listAllTools } from './listTools.js';
import type { McpTx } from './mcpTx.js';
import {
  CloseOptionsSchema,
  type ResolvedTxConfig,
  type ToolPolicy,
  ToolPolicySchema,
  type TxCallOptions,
  TxCallOptionsSchema,
  type TxConfig,
  TxConfigSchema,
} from './options.js';
import { DefaultPipeline } from './pipeline.js';

import {
  asInputError,
  configuredRetryableErrors,
  parseCallOptions,
  resolveRequest,
  stageIsOn,
} from './resolve.js';

/** A whole task's own stages: only the trace (one span) and the cancellation; its creation had the rest. */
const TRACE_ONLY = {
  limiter: false,
  breaker: false,
  retry: false,
  dedupe: false,
  monitor: false,
  record: false,
} as const;

interface ActiveCall {
  readonly request: TxRequest;
}

/**
 * Reliable calls on a connection mcp-tx owns: `connect` makes the transport (called again for every
 * reconnect), mcp-tx makes the SDK `Client` (with {@link mcpTxClientCapabilities} and
 * `config.clientInfo`), connects it, and connects it again whenever the connection is lost (the
 * server exits, the HTTP session expires, a ping fails), with `config.reconnect`'s backoff.
 *
 * Returns at once, connecting in the background: calls are cold and wait for the connection
 * (bounded by their timeout); `tx.ready` resolves, and `tx.connection$` says `connected`, once it is
 * made. A bad `connect` (it throws, or returns something that is not a transport) closes the McpTx
 * at the first connect with `MCP_TX_VALIDATION`. Throws `MCP_TX_VALIDATION` naming the field when
 * the config is wrong.
 *
 * @example
 * const tx = createMcpTx(() => new StdioClientTransport({ command: 'node', args: ['server.js'] }), {
 *   reconnect: { maxDelayMs: 2_000 },
 * });
 * tx.connection$.subscribe(({ state, attempt }) => console.log(state, attempt));
 * const { data } = await tx.call('search', { q: 'rxjs' }); // waits for the first connection
 */
export function createMcpTx(connect: TransportFactory, config?: TxConfig): McpTx;
/**
 * Wraps a connected SDK `Client` with MCP-Tx reliability. The client stays the user's: mcp-tx does
 * not reconnect it (`connection$` says `connected` until `close()`). Throws `MCP_TX_VALIDATION`
 * naming the field when the config is wrong.
 *
 * @example
 * const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
 * await client.connect(transport);
 * const tx = createMcpTx(client, { timeoutMs: 10_000, retry: { maxAttempts: 5 } });
 * const { data } = await tx.call('search', { q: 'rxjs' });
 */
export function createMcpTx(client: Client, config?: TxConfig): McpTx;
export function createMcpTx(target: Client | TransportFactory, config: TxConfig = {}): McpTx {
  if (typeof target === 'function') {
    const resolved = parseOrThrow(TxConfigSchema, config, 'config');
    const client = new Client(resolved.clientInfo ?? defaultClientInfo(), {
      capabilities: mcpTxClientCapabilities(),
    });
    const connection = new ManagedConnection({
      client,
      connect: resolved.sendCancellation ? target : async () => withoutCancellation(await target()),
      reconnect: resolved.reconnect,
      pingIntervalMs: resolved.pingIntervalMs,
      scheduler: resolved.scheduler ?? asyncScheduler,
    });
    return new McpTxClient(client, resolved, connection);
  }
  if (typeof (target as Partial<Client> | null)?.callTool !== 'function') {
    throw validationError(
      'client',
      'must be a connected MCP SDK Client, or a function that returns a Transport',
    );
  }
  const resolved = parseOrThrow(TxConfigSchema, config, 'config');
  if (!resolved.sendCancellation) withoutCancellation(target.transport);
  return new McpTxClient(
    target,
    resolved,
    new ClientConnection(target, resolved.scheduler ?? asyncScheduler),
  );
}

class McpTxClient implements McpTx {
  private readonly policies = new Map<string, ToolPolicy>();
  private readonly active = new Set<ActiveCall>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly env: AttemptEnvironment;
  private readonly scheduler: SchedulerLike;
  private readonly pipeline: DefaultPipeline;
  private taskClient?: TaskClient<TxCallOptions>;
  private closing?: Promise<void>;
  /**
   * Aborted, with the cancellation as its reason, when `close()` stops waiting for the calls in
   * flight. Every call in flight listens to it: a light signal, not an EventTarget.
   */
  private readonly closed = new AttemptSignal();
  /** The tool listing of one connection (by its number), done or under way. */
  private listing?: {
    readonly connection: number;
    readonly annotations: Promise<ReadonlyMap<string, ToolAnnotations>>;
  };
  /** How many times the connection was made (a listing belongs to one). */
  private connections = 0;
  /** Set as `close()` starts: the connection closing then cancels every call. */
  private shuttingDown = false;
  readonly connection$: Observable<ConnectionState>;
  readonly ready: Promise<void>;

  constructor(
    readonly client: Client,
    readonly config: ResolvedTxConfig,
    private readonly connection: TxConnection,
  ) {
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.env = {
      client,
      serverSupportsTx: () => this.serverSupportsTx,
      serverDedupes: () => this.serverDedupes,
      retryableErrors: configuredRetryableErrors(config),
      scheduler: this.scheduler,
      toolAnnotations: (name) => this.toolAnnotations(name),
      connection: connection.gate,
    };
    for (const [name, policy] of Object.entries(config.tools)) this.policies.set(name, policy);
    this.pipeline = new DefaultPipeline(
      config,
      (name) => this.policies.get(name),
      this.scheduler,
      this.closed.asAbortSignal(),
    );
    this.connection$ = connection.state$;
    this.ready = firstConnected(connection.state$);
    connection.state$.subscribe((state) => this.onConnection(state));
    connection.start();
  }

  /** Every value of `connection$`: told to the monitor; a (re)connect lists the tools again; closing ends the calls. */
  private onConnection(state: ConnectionState): void {
    this.config.monitor?.recordConnection(state);
    if (state.state === 'connected') this.connections += 1;
    if (state.state === 'closed' && this.shuttingDown) {
      this.closed.abort(
        new TxError(
          TxErrorCode.Cancelled,
          'Cancelled: the McpTx was closed while not connected to the MCP server',
        ),
      );
    }
  }

  get serverSupportsTx(): boolean {
    return advertisesMcpTx(this.client.getServerCapabilities());
  }

  get serverDedupes(): boolean {
    const capabilities = this.client.getServerCapabilities();
    return serverDedupes(capabilities) || (this.config.trustServerDedupe && advertisesMcpTx(capabilities));
  }

  get activeRequests(): ReadonlyMap<string, TxRequest> {
    return new Map([...this.active].map((call) => [call.request.requestId, call.request]));
  }

  call$(name: string, args?: JsonObject, options?: TxCallOptions): TxCall {
    return this.make(name, args, options, (request, parsed) =>
      this.pipeline.apply(attemptCall(this.env, request), parsed),
    );
  }

  call(name: string, args?: JsonObject, options?: TxCallOptions): Promise<TxResult> {
    return firstValueFrom(this.call$(name, args, options));
  }

  attempt$(name: string, args?: JsonObject, options?: TxCallOptions): TxCall {
    return this.make(name, args, options, (request) =>
      cancelledBy(attemptCall(this.env, request), request.options.signal, this.closed.asAbortSignal()),
    );
  }

  task$(name: string, args?: JsonObject, options?: TxCallOptions & TaskOnlyOptions): Observable<TaskEvent> {
    return this.tasks.task$(name, args, options);
  }

  resumeTask$(
    taskId: string,
    options?: TxCallOptions & TaskOnlyOptions & ResumeOptions,
  ): Observable<TaskEvent> {
    return this.tasks.resumeTask$(taskId, options);
  }

  cancelTask(taskId: string, options?: { timeoutMs?: number }): Promise<Task> {
    return this.tasks.cancelTask(taskId, options);
  }

  pendingTasks(): Promise<PendingTask[]> {
    return this.tasks.pendingTasks();
  }

  /** What tasks borrow of this client: the creation through the pipeline (traced as a whole), the log. */
  private get tasks(): TaskClient<TxCallOptions> {
    this.taskClient ??= new TaskClient<TxCallOptions>({
      env: this.env,
      creation: (name, args, options, attempt) =>
        this.make(name, args, options, (request, parsed) =>
          this.pipeline.apply(attempt(request), { ...parsed, trace: false }),
        ),
      plain: (name, args, options) => this.call$(name, args, options),
      traced: (call, options) => this.track(this.pipeline.apply(call, { ...options, ...TRACE_ONLY })),
      resumeRequest: (name, options) =>
        resolveRequest(this.config, this.policies.get(name), {
          name,
          args: {},
          options: parseOrThrow(TxCallOptionsSchema, options ?? {}, 'options'),
          scheduler: this.scheduler,
        }),
      events: (name, options) =>
        stageIsOn('record', this.policies.get(name), options) ? this.config.events : undefined,
    });
    return this.taskClient;
  }

  tool(name: string, policy: ToolPolicy): McpTx {
    assertToolName(name);
    this.policies.set(name, parseOrThrow(ToolPolicySchema, policy, `tools.${name}`));
    this.pipeline.invalidate(name);
    return this;
  }

  tools(): Readonly<Record<string, ToolPolicy>> {
    return Object.freeze(Object.fromEntries(this.policies));
  }

  close(options: { timeoutMs?: number } = {}): Promise<void> {
    let timeoutMs: number;
    try {
      timeoutMs =
        parseOrThrow(CloseOptionsSchema, options, 'options').timeoutMs ?? this.config.closeTimeoutMs;
    } catch (error) {
      return Promise.reject(error);
    }
    this.closing ??= this.shutDown(timeoutMs);
    return this.closing;
  }

  /**
   * Refuses new calls; not connected (or once the connection is lost), cancels the calls at once;
   * else waits for them (cancelling them after `timeoutMs`); then closes the connection.
   */
  private async shutDown(timeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    this.connection.beginClose();
    await this.drain(timeoutMs);
    await this.connection.close();
  }

  /**
   * A tool's annotations, from a listing of the server's tools (all pages) made on the current
   * connection the first time one is needed: after a reconnect they are listed again. When the
   * connection mcp-tx keeps is lost before its tools were listed, waits for the next one (at most
   * the config's `timeoutMs`) and lists them there. Unknown (undefined) when the listing fails; it
   * is tried again the next time.
   */
  private async toolAnnotations(name: string): Promise<ToolAnnotations | undefined> {
    if (this.listing?.connection !== this.connections) {
      const gate = this.connection.gate;
      if (gate !== undefined && !gate.connected && !(await connectedWithin(gate, this.config.timeoutMs))) {
        return undefined;
      }
      if (this.listing?.connection !== this.connections) {
        this.listing = { connection: this.connections, annotations: listAnnotations(this.client) };
      }
    }
    const { annotations } = this.listing;
    try {
      return (await annotations).get(name);
    } catch {
      if (this.listing?.annotations === annotations) this.listing = undefined;
      return undefined;
    }
  }

  /** Validates the input, builds the request and the call, and tracks it; bad input becomes a failing call. */
  private make(
    name: string,
    args: JsonObject | undefined,
    options: TxCallOptions | undefined,
    build: (request: TxRequest, options: TxCallOptions | undefined) => TxCall,
  ): TxCall {
    let call: TxCall;
    try {
      assertToolName(name);
      const parsed = parseCallOptions(options);
      const request = resolveRequest(this.config, this.policies.get(name), {
        name,
        args: args === undefined ? {} : args,
        options: parsed ?? {},
        scheduler: this.scheduler,
      });
      call = build(request, parsed);
    } catch (error) {
      return this.rejectedCall(name, asInputError('args', error));
    }
    return this.track(call);
  }

  /** A call that errors with `error` when subscribed and never reaches the server. */
  private rejectedCall(name: unknown, error: TxError): TxCall {
    const request: TxRequest = Object.freeze({
      name: typeof name === 'string' ? name : String(name),
      args: {},
      requestId: newRequestId(),
      createdAtMs: this.scheduler.now(),
      options: { timeoutMs: this.config.timeoutMs },
    });
    const state = new TxCallState();
    return new TxCall(request, state, this.env, (subscriber) => {
      const meta = failureMeta(request, state, error, this.scheduler.now(), this.serverSupportsTx);
      subscriber.error(error.withMeta(meta));
    });
  }

  /** Counts the call in `activeRequests` while subscribed; refuses it once closing. */
  private track(call: TxCall): TxCall {
    return call.derive((subscriber: Subscriber<TxResult>) => {
      if (this.closing !== undefined) {
        const refused = new TxError(TxErrorCode.Cancelled, 'This McpTx is closed; no new calls are accepted');
        subscriber.error(withCallMeta(call, refused));
        return;
      }
      const entry: ActiveCall = { request: call.request };
      this.active.add(entry);
      const subscription = call.subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        this.release(entry);
      };
    });
  }

  private release(entry: ActiveCall): void {
    if (!this.active.delete(entry) || this.active.size > 0) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private drain(timeoutMs: number): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const deadline = this.scheduler.schedule(() => {
        const error = new TxError(
          TxErrorCode.Cancelled,
          `Cancelled: McpTx closed after waiting ${timeoutMs} ms`,
        );
        this.closed.abort(error);
      }, timeoutMs);
      this.idleWaiters.push(() => {
        deadline.unsubscribe();
        resolve();
      });
    });
  }
}

async function listAnnotations(client: Client): Promise<ReadonlyMap<string, ToolAnnotations>> {
  const annotations = new Map<string, ToolAnnotations>();
  for (const tool of await listAllTools(client))
    if (tool.annotations !== undefined) annotations.set(tool.name, tool.annotations);
  return annotations;
}

/** Whether `gate` is connected within `timeoutMs` (false when that passes, or it closes). */
function connectedWithin(gate: ConnectionGate, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => gate.whenConnected(timeoutMs, (error) => resolve(error === undefined)));
}
