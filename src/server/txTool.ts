/**
 * `txTool`: a tool callback made exactly-once per idempotency key or request id. Over 300 lines
 * because it holds the server's whole answer protocol around the shared keyed execution
 * (keyedExecution.ts): which identity, replay, conflict, in-progress, the effect commit and the
 * `_meta.mcp_tx` of every answer; the request fields are read in txRequest.ts.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { asyncScheduler, defer, firstValueFrom, type SchedulerLike } from 'rxjs';
import * as z from 'zod';
import { PositiveMsSchema, parseOrThrow, SchedulerSchema } from '../config/validators.js';
import { isTxError, TxErrorCode, validationError } from '../core/errors.js';
import { sanitizeMessage } from '../core/sanitize.js';
import type { TxStatus } from '../core/types.js';
import { MCP_TX_KEY, type WireResponseMeta } from '../core/wire.js';
import { fingerprint, scopedKey } from '../idempotency/fingerprint.js';
import {
  beginKey,
  type CallKey,
  conflictMessage,
  InProgressOptionsSchema,
  inProgressMessage,
  type Keeping,
  runHoldingKey,
  windowMsOf,
} from '../idempotency/keyedExecution.js';
import {
  type BeginOutcome,
  type EffectStore,
  type IdempotencyRecord,
  type IdempotencyStore,
  isEffectStore,
} from '../idempotency/store.js';
import { isResultWithEffect, type ResultWithEffect } from './effect.js';
import { type TxToolRequest, txRequestOf } from './txRequest.js';

const TxToolOptionsSchema = z.strictObject({
  tool: z.string().min(1, 'must not be empty'),
  store: z.custom<IdempotencyStore>(
    (value) => typeof (value as IdempotencyStore | null)?.begin === 'function',
    'must be an IdempotencyStore',
  ),
  ttlMs: PositiveMsSchema.optional(),
  dedupeRequestIds: z.boolean().default(true),
  ...InProgressOptionsSchema(50),
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link txTool}:
 *
 * - `tool` (required): the tool's name; keys are scoped by it (`<tool>:<key>`).
 * - `store` (required): the {@link IdempotencyStore} (an {@link EffectStore} for handlers that
 *   answer `withEffect`).
 * - `ttlMs` (the store's `windowMs`, else 300 000): how long a completed key's result is kept.
 * - `dedupeRequestIds` (`true`): a request without an idempotency key is deduped on its
 *   `request_id` (the same on every retry of a logical call); `false` runs such requests every time,
 *   without the store (for a tool a repeat cannot harm, to spare the store a record per call).
 * - `inProgressTtlMs` (120 000): how long a key stays held while its handler runs, so that a
 *   crashed server does not block it forever.
 * - `inProgress` (`{ waitMs: 30_000, pollMs: 50 }`): how long a request for a key held by another
 *   waits for it, and how often it looks; then it answers `MCP_TX_IN_PROGRESS`.
 * - `scheduler` (`asyncScheduler`): the clock and timers of that wait.
 *
 * @example
 * txTool(handler, { tool: 'charge', store, ttlMs: 86_400_000, inProgress: { waitMs: 5_000, pollMs: 100 } });
 */
export type TxToolOptions = z.input<typeof TxToolOptionsSchema>;
type Settings = z.output<typeof TxToolOptionsSchema> & {
  ttlMs: number;
  scheduler: SchedulerLike;
  /** How a handler's answer is kept under its key. */
  keeping: Keeping<HandlerAnswer>;
};

/** What a tool callback gets last: the SDK's `RequestHandlerExtra`, of which txTool reads `_meta` and `signal`. */
interface ToolExtra {
  readonly _meta?: Record<string, unknown>;
  readonly signal?: AbortSignal;
}

/** What a wrapped handler answers: a result, or a result and an effect for the store to commit ({@link withEffect}). */
type HandlerAnswer = CallToolResult | ResultWithEffect<unknown>;

/** A tool callback taking arguments (register the tool with an `inputSchema`, `{}` if it has none). */
type ToolHandler<Args, Extra extends ToolExtra> = (
  args: Args,
  extra: Extra,
) => HandlerAnswer | Promise<HandlerAnswer>;

/**
 * Makes a tool's effect happen once per logical call. Wraps an `McpServer` tool callback. A request's
 * identity is its `_meta.mcp_tx.idempotency_key`, else its `_meta.mcp_tx.request_id` (which a
 * client keeps on every retry of a call: the Python MCP-Tx retries a call without a key that way,
 * and so does mcp-tx for read-only and idempotent tools); the key wins when both are there, since
 * it spans request ids. For that identity the store is asked for `(tool, identity)` with the
 * arguments' fingerprint — a completed one answers with the stored result and `duplicate: true`
 * without running the handler; one in progress is waited for (bounded, then `MCP_TX_IN_PROGRESS`,
 * retryable) and answered as a duplicate when it completes; the same identity with other arguments
 * answers `MCP_TX_IDEMPOTENCY_CONFLICT`; a new one runs the handler and stores its result. A request
 * with neither (a plain MCP client) runs the handler every time. A handler that throws or answers
 * `isError` releases the identity, so that a retry may run it again. Every answer to an MCP-Tx
 * client carries `_meta.mcp_tx = { ack, processed, duplicate, attempts, final_status }`. This is
 * what makes the effect exactly-once when a response is lost and the client retries. A server killed
 * between the handler's effect and the store's record would still run it again on the retry: for
 * that, answer {@link withEffect} and let an {@link EffectStore} commit the effect with the record.
 * A server whose side-effect tools are all wrapped so advertises the `dedupe` feature
 * (`mcpTxServerCapabilities()` does by default). The handler reads the request's MCP-Tx fields with
 * {@link txRequestOf}.
 *
 * @example
 * const store = memoryIdempotencyStore();
 * server.registerTool('charge', { inputSchema: { orderId: z.string(), cents: z.number() } },
 *   txTool(async ({ orderId, cents }) => chargeCard(orderId, cents), { tool: 'charge', store }));
 */
export function txTool<Args, Extra extends ToolExtra>(
  handler: ToolHandler<Args, Extra>,
  options: TxToolOptions,
): (args: Args, extra: Extra) => Promise<CallToolResult> {
  if (typeof handler !== 'function') throw validationError('handler', 'must be a tool callback');
  const parsed = parseOrThrow(TxToolOptionsSchema, options, 'options');
  const ttlMs = windowMsOf(parsed.store, parsed.ttlMs);
  const settings: Settings = {
    ...parsed,
    ttlMs,
    scheduler: parsed.scheduler ?? asyncScheduler,
    keeping: keeping(parsed.store, ttlMs),
  };
  return async (args: Args, extra: Extra) => {
    let ran = false;
    const run = () => {
      ran = true;
      return handler(args, extra);
    };
    const request = txRequestOf(extra);
    const identity = request === undefined ? undefined : identityOf(request, settings);
    const unkeyed = async () => {
      const result = await runUnkeyed(run, settings.store);
      return request === undefined ? result : withTxMeta(result, request, { duplicate: false });
    };
    try {
      if (request === undefined || identity === undefined) return await unkeyed();
      const callKey = { store: settings.store, key: identity.storeKey, fingerprint: fingerprint(args) };
      try {
        return await runKeyed(run, { ...callKey, settings, request, extra, identity });
      } catch (error) {
        // A request id is deduped at best: when the store is down before the handler ran, it runs as
        // it would without one (an idempotency key, a promise of the client's, is never run so).
        if (ran || identity.kind !== 'request id' || !isTxError(error, TxErrorCode.StoreUnavailable))
          throw error;
        return await unkeyed();
      }
    } catch (error) {
      if (!isTxError(error)) throw error;
      // The store failed, or cannot commit the handler's effect.
      return request === undefined
        ? plainError(error.message)
        : errorResult(request, error.code, error.message);
    }
  };
}

/** What a request is deduped on: the client's idempotency key, else its request id. */
interface Identity {
  readonly kind: 'idempotency key' | 'request id';
  /** The key or the request id, as the client sent it. */
  readonly text: string;
  /** Where the store keeps it: {@link serverKey} or {@link requestIdKey}. */
  readonly storeKey: string;
}

function identityOf(request: TxToolRequest, settings: Settings): Identity | undefined {
  const { idempotencyKey, requestId } = request;
  if (idempotencyKey !== undefined && idempotencyKey !== '')
    return {
      kind: 'idempotency key',
      text: idempotencyKey,
      storeKey: serverKey(settings.tool, idempotencyKey),
    };
  if (settings.dedupeRequestIds && requestId !== undefined && requestId !== '')
    return { kind: 'request id', text: requestId, storeKey: requestIdKey(settings.tool, requestId) };
  return undefined;
}

/**
 * The store key of a server-side call by its idempotency key: the client's {@link scopedKey} after
 * `server `. A client's key never has a space before its first `:` (tool names have no whitespace),
 * so a client's `dedupe` and a server's `txTool` sharing one store (one Redis prefix) never take
 * each other's keys.
 */
function serverKey(tool: string, idempotencyKey: string): string {
  return `server ${scopedKey(tool, idempotencyKey)}`;
}

/**
 * The store key of a server-side call without an idempotency key, by its request id: the
 * {@link scopedKey} of the request id after `server-request `. It differs from every
 * {@link serverKey} at its 7th character (`-`, not a space), so a request id never takes the record
 * of an idempotency key of the same text, and from a client's keys as {@link serverKey} does.
 */
function requestIdKey(tool: string, requestId: string): string {
  return `server-request ${scopedKey(tool, requestId)}`;
}

interface KeyedCall extends CallKey {
  readonly settings: Settings;
  readonly request: TxToolRequest;
  /** What the call is deduped on, before it is scoped into a store key. */
  readonly identity: Identity;
  readonly extra: ToolExtra;
}

/** The wrapped handler, bound to this request's arguments and extra. */
type Run = () => HandlerAnswer | Promise<HandlerAnswer>;

/**
 * Takes the key (waiting while another request holds it, until this one is cancelled), then runs
 * the handler holding it, or answers what the store has for it.
 */
async function runKeyed(run: Run, call: KeyedCall): Promise<CallToolResult> {
  const outcome = await firstValueFrom(beginKey(call, call.settings, call.extra.signal));
  return outcome.status === 'new' ? runHolding(run, call, outcome.token) : answerHeld(call, outcome);
}

/** The answer for a key this request does not get to run: stored, conflicting, or held by another. */
function answerHeld(call: KeyedCall, outcome: Exclude<BeginOutcome, { status: 'new' }>): CallToolResult {
  const { request, identity } = call;
  const { tool } = call.settings;
  const byKey = identity.kind === 'idempotency key';
  switch (outcome.status) {
    case 'completed':
      if (outcome.record.kind === 'result')
        return withTxMeta(outcome.record.result, request, { duplicate: true });
      return errorResult(request, outcome.record.code, outcome.record.message);
    case 'conflict': {
      const message = byKey
        ? conflictMessage(tool, identity.text)
        : `Request id "${identity.text}" was already used for ${tool} with other arguments`;
      return errorResult(request, TxErrorCode.IdempotencyConflict, message);
    }
    case 'in_progress': {
      const message = byKey
        ? inProgressMessage(tool, identity.text)
        : `A call of ${tool} with request id "${identity.text}" is still in progress`;
      return errorResult(request, TxErrorCode.InProgress, message);
    }
  }
}

/**
 * Runs the handler holding the key (`token`) and answers as it did; an effect it answers is
 * committed with the key's record ({@link commitKeyed}). The handler has run, so its result is the
 * answer even when the store cannot keep it: the key then stays in progress until its hold
 * expires, and a retry in the meantime waits or is told the call is in progress; it is not run
 * again while the hold lasts.
 */
async function runHolding(run: Run, call: KeyedCall, token: string | undefined): Promise<CallToolResult> {
  const running = runHoldingKey(
    defer(async () => run()),
    call,
    token,
    call.settings.keeping,
  );
  let answer: HandlerAnswer;
  try {
    answer = await firstValueFrom(running);
  } catch (error) {
    return errorResult(call.request, TxErrorCode.ToolError, messageOf(error));
  }
  const result = resultOf(answer);
  if (result.isError || !isResultWithEffect(answer))
    return withTxMeta(result, call.request, { duplicate: false });
  if (!isEffectStore(call.store)) throw noEffectStore();
  return commitKeyed(call.store, call, answer, token, 1);
}

/**
 * What a handler's answer leaves under its key: a result is kept; a failure or an `isError` answer
 * releases the key, so that a retry may run the handler again; an effect leaves the key held for
 * {@link commitKeyed} (released when the store cannot commit effects).
 */
function keeping(store: IdempotencyStore, ttlMs: number): Keeping<HandlerAnswer> {
  return {
    windowMs: ttlMs,
    afterResult: (answer) => {
      if (answer === undefined || resultOf(answer).isError) return 'release';
      if (!isResultWithEffect(answer)) return { kind: 'result', result: answer };
      return isEffectStore(store) ? 'leave-held' : 'release';
    },
    afterFailure: () => 'release',
  };
}

/**
 * Commits the effect with the key's record. When the key was no longer ours (our in-progress
 * record expired and another request took it), nothing was applied: answer what the store holds
 * now — or, when the key is free again, take it and commit once more.
 */
async function commitKeyed(
  store: IdempotencyStore & EffectStore<unknown>,
  call: KeyedCall,
  answer: ResultWithEffect<unknown>,
  token: string | undefined,
  retakes: number,
): Promise<CallToolResult> {
  const { key, fingerprint, settings, request } = call;
  const { result, effect } = answer;
  const record: IdempotencyRecord = { kind: 'result', result };
  if (await store.commit(effect, { key, fingerprint, record, ttlMs: settings.ttlMs, token }))
    return withTxMeta(result, request, { duplicate: false });
  const outcome = await store.begin(key, fingerprint, settings.inProgressTtlMs);
  if (outcome.status !== 'new') return answerHeld(call, outcome);
  if (retakes > 0) return commitKeyed(store, call, answer, outcome.token, retakes - 1);
  await store.release(key, outcome.token);
  return answerHeld(call, { status: 'in_progress' });
}

/** A call without a key: the handler runs; an effect it answers is committed on its own. */
async function runUnkeyed(run: Run, store: IdempotencyStore): Promise<CallToolResult> {
  let answer: HandlerAnswer;
  try {
    answer = await run();
  } catch (error) {
    return plainError(messageOf(error));
  }
  if (!isResultWithEffect(answer)) return answer;
  if (!isEffectStore(store)) throw noEffectStore();
  if (!answer.result.isError) await store.commit(answer.effect);
  return answer.result;
}

const resultOf = (answer: HandlerAnswer) => (isResultWithEffect(answer) ? answer.result : answer);

const plainError = (text: string): CallToolResult => ({ content: [{ type: 'text', text }], isError: true });

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

const noEffectStore = () =>
  validationError(
    'options.store',
    'must be an EffectStore (e.g. redisIdempotencyStore) when the handler answers withEffect',
  );

function withTxMeta(
  result: CallToolResult,
  request: TxToolRequest,
  outcome: { duplicate: boolean; errorCode?: string; errorMessage?: string },
): CallToolResult {
  const failed = result.isError === true;
  const status: TxStatus = failed ? 'failed' : 'completed';
  const meta: WireResponseMeta = {
    ack: true,
    processed: !failed,
    duplicate: outcome.duplicate,
    attempts: request.retryCount + 1,
    final_status: status,
  };
  if (outcome.errorCode !== undefined) meta.error_code = outcome.errorCode;
  if (outcome.errorMessage !== undefined) meta.error_message = outcome.errorMessage;
  return { ...result, _meta: { ...result._meta, [MCP_TX_KEY]: meta } };
}

function errorResult(request: TxToolRequest, code: string, message: string): CallToolResult {
  const text = sanitizeMessage(message);
  return withTxMeta(plainError(text), request, { duplicate: false, errorCode: code, errorMessage: text });
}
