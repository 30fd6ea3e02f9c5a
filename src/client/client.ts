import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { asyncScheduler, firstValueFrom, type SchedulerLike, type Subscriber } from 'rxjs';
import { AttemptSignal } from '../call/attemptSignal.js';
import { type AttemptEnvironment, attemptCall, TxCall, TxCallState, withCallMeta } from '../call/call.js';
import { cancelledBy } from '../call/cancellation.js';
import { failureMeta } from '../call/result.js';
import { assertToolName } from '../config/toolInput.js';
import { parseOrThrow } from '../config/validators.js';
import { TxError, TxErrorCode, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import type { JsonObject, TxRequest, TxResult } from '../core/types.js';
import { advertisesMcpTx } from '../core/wire.js';
import { listAllTools } from './listTools.js';
import type { McpTx } from './mcpTx.js';
import {
  type ResolvedTxConfig,
  type ToolPolicy,
  ToolPolicySchema,
  type TxCallOptions,
  TxCallOptionsSchema,
  type TxConfig,
  TxConfigSchema,
} from './options.js';
import { DefaultPipeline } from './pipeline.js';

import { configuredRetryableErrors, resolveRequest } from './resolve.js';

interface ActiveCall {
  readonly request: TxRequest;
}

/**
 * Wraps a connected SDK `Client` with MCP-Tx reliability. Throws `MCP_TX_VALIDATION` naming the
 * field when the config is wrong.
 *
 * @example
 * const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
 * await client.connect(transport);
 * const tx = createMcpTx(client, { timeoutMs: 10_000, retry: { maxAttempts: 5 } });
 * const { data } = await tx.call('search', { q: 'rxjs' });
 */
export function createMcpTx(client: Client, config: TxConfig = {}): McpTx {
  if (typeof (client as Partial<Client> | null)?.callTool !== 'function') {
    throw validationError('client', 'must be a connected MCP SDK Client');
  }
  return new McpTxClient(client, parseOrThrow(TxConfigSchema, config, 'config'));
}

class McpTxClient implements McpTx {
  private readonly policies = new Map<string, ToolPolicy>();
  private readonly active = new Set<ActiveCall>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly env: AttemptEnvironment;
  private readonly scheduler: SchedulerLike;
  private readonly pipeline: DefaultPipeline;
  private closing?: Promise<void>;
  /**
   * Aborted, with the cancellation as its reason, when `close()` stops waiting for the calls in
   * flight. Every call in flight listens to it: a light signal, not an EventTarget.
   */
  private readonly closed = new AttemptSignal();
  private annotations?: Promise<ReadonlyMap<string, ToolAnnotations>>;

  constructor(
    readonly client: Client,
    readonly config: ResolvedTxConfig,
  ) {
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.env = {
      client,
      serverSupportsTx: () => this.serverSupportsTx,
      retryableErrors: configuredRetryableErrors(config),
      scheduler: this.scheduler,
      toolAnnotations: (name) => this.toolAnnotations(name),
    };
    for (const [name, policy] of Object.entries(config.tools)) this.policies.set(name, policy);
    this.pipeline = new DefaultPipeline(
      config,
      (name) => this.policies.get(name),
      this.scheduler,
      this.closed.asAbortSignal(),
    );
  }

  get serverSupportsTx(): boolean {
    return advertisesMcpTx(this.client.getServerCapabilities());
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
      cancelledBy(attemptCall(this.env, request), [request.options.signal, this.closed.asAbortSignal()]),
    );
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
    this.closing ??= this.drain(options.timeoutMs ?? this.config.closeTimeoutMs).then(() =>
      this.client.close(),
    );
    return this.closing;
  }

  /** Lists the server's tools once (all pages) and caches their annotations; a failed listing is tried again later. */
  private async toolAnnotations(name: string): Promise<ToolAnnotations | undefined> {
    this.annotations ??= listAnnotations(this.client).catch((error: unknown) => {
      this.annotations = undefined;
      throw error;
    });
    try {
      return (await this.annotations).get(name);
    } catch {
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
      const parsed =
        options === undefined ? undefined : parseOrThrow(TxCallOptionsSchema, options, 'options');
      const request = resolveRequest(this.config, this.policies.get(name), {
        name,
        args: args === undefined ? {} : args,
        options: parsed ?? {},
        scheduler: this.scheduler,
      });
      call = build(request, parsed);
    } catch (error) {
      return this.rejectedCall(name, asInputError(error));
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

/** Input checks raise TxErrors; anything else (a getter that throws while reading the arguments) is bad input too. */
function asInputError(error: unknown): TxError {
  if (error instanceof TxError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TxError(TxErrorCode.Validation, `Invalid args: could not be read (${reason})`, {
    field: 'args',
    cause: error,
  });
}

async function listAnnotations(client: Client): Promise<ReadonlyMap<string, ToolAnnotations>> {
  const annotations = new Map<string, ToolAnnotations>();
  for (const tool of await listAllTools(client))
    if (tool.annotations !== undefined) annotations.set(tool.name, tool.annotations);
  return annotations;
}
