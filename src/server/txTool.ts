import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { asyncScheduler, defer, firstValueFrom, type SchedulerLike } from 'rxjs';
import { z } from 'zod';
import { PositiveMsSchema, parseOrThrow, SchedulerSchema } from '../config/validators.js';
import { isTxError, TxErrorCode, validationError } from '../core/errors.js';
import { sanitizeMessage } from '../core/sanitize.js';
import type { TxStatus } from '../core/types.js';
import { MCP_TX_KEY, type WireRequestMeta, type WireResponseMeta } from '../core/wire.js';
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

const TxToolOptionsSchema = z.strictObject({
  tool: z.string().min(1, 'must not be empty'),
  store: z.custom<IdempotencyStore>(
    (value) => typeof (value as IdempotencyStore | null)?.begin === 'function',
    'must be an IdempotencyStore',
  ),
  ttlMs: PositiveMsSchema.optional(),
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
 * Makes a tool's effect happen once per idempotency key. Wraps an `McpServer` tool callback: with a
 * `_meta.mcp_tx.idempotency_key` on the request it asks the store for `(tool, key)` with the
 * arguments' fingerprint — a completed key answers with the stored result and `duplicate: true`
 * without running the handler; a key in progress is waited for (bounded, then `MCP_TX_IN_PROGRESS`,
 * retryable); the same key with other arguments answers `MCP_TX_IDEMPOTENCY_CONFLICT`; a new key
 * runs the handler and stores its result. A handler that throws or answers `isError` releases the
 * key, so that a retry may run it again. Every answer to an MCP-Tx client carries
 * `_meta.mcp_tx = { ack, processed, duplicate, attempts, final_status }`. This is what makes the
 * effect exactly-once when a response is lost and the client retries. A server killed between the
 * handler's effect and the store's record would still run it again on the retry: for that, answer
 * {@link withEffect} and let an {@link EffectStore} commit the effect with the record.
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
    const run = () => handler(args, extra);
    const wire = requestMetaOf(extra);
    const key = wire?.idempotency_key;
    try {
      if (typeof key === 'string' && key !== '' && wire !== undefined) {
        const { store, tool } = settings;
        const callKey = { store, key: serverKey(tool, key), fingerprint: fingerprint(args) };
        return await runKeyed(run, { ...callKey, settings, wire, extra, idempotencyKey: key });
      }
      const result = await runUnkeyed(run, settings.store);
      return wire === undefined ? result : withTxMeta(result, wire, { duplicate: false });
    } catch (error) {
      if (!isTxError(error)) throw error;
      // The store failed, or cannot commit the handler's effect.
      return wire === undefined ? plainError(error.message) : errorResult(wire, error.code, error.message);
    }
  };
}

function requestMetaOf(extra: ToolExtra): Partial<WireRequestMeta> | undefined {
  const block = extra._meta?.[MCP_TX_KEY];
  return typeof block === 'object' && block !== null ? (block as Partial<WireRequestMeta>) : undefined;
}

/**
 * The store key of a server-side call: the client's {@link scopedKey} after `server `. A client's
 * key never has a space before its first `:` (tool names have no whitespace), so a client's `dedupe`
 * and a server's `txTool` sharing one store (one Redis prefix) never take each other's keys.
 */
function serverKey(tool: string, idempotencyKey: string): string {
  return `server ${scopedKey(tool, idempotencyKey)}`;
}

interface KeyedCall extends CallKey {
  readonly settings: Settings;
  readonly wire: Partial<WireRequestMeta>;
  /** The client's key, before {@link serverKey} scopes it. */
  readonly idempotencyKey: string;
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
  const { wire, idempotencyKey } = call;
  const { tool } = call.settings;
  switch (outcome.status) {
    case 'completed':
      if (outcome.record.kind === 'result')
        return withTxMeta(outcome.record.result, wire, { duplicate: true });
      return errorResult(wire, outcome.record.code, outcome.record.message);
    case 'conflict':
      return errorResult(wire, TxErrorCode.IdempotencyConflict, conflictMessage(tool, idempotencyKey));
    case 'in_progress':
      return errorResult(wire, TxErrorCode.InProgress, inProgressMessage(tool, idempotencyKey));
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
    return errorResult(call.wire, TxErrorCode.ToolError, messageOf(error));
  }
  const result = resultOf(answer);
  if (result.isError || !isResultWithEffect(answer))
    return withTxMeta(result, call.wire, { duplicate: false });
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
  const { key, fingerprint, settings, wire } = call;
  const { result, effect } = answer;
  const record: IdempotencyRecord = { kind: 'result', result };
  if (await store.commit(effect, { key, fingerprint, record, ttlMs: settings.ttlMs, token }))
    return withTxMeta(result, wire, { duplicate: false });
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
  wire: Partial<WireRequestMeta>,
  outcome: { duplicate: boolean; errorCode?: string; errorMessage?: string },
): CallToolResult {
  const failed = result.isError === true;
  const status: TxStatus = failed ? 'failed' : 'completed';
  const meta: WireResponseMeta = {
    ack: true,
    processed: !failed,
    duplicate: outcome.duplicate,
    attempts: (typeof wire.retry_count === 'number' ? wire.retry_count : 0) + 1,
    final_status: status,
  };
  if (outcome.errorCode !== undefined) meta.error_code = outcome.errorCode;
  if (outcome.errorMessage !== undefined) meta.error_message = outcome.errorMessage;
  return { ...result, _meta: { ...result._meta, [MCP_TX_KEY]: meta } };
}

function errorResult(wire: Partial<WireRequestMeta>, code: string, message: string): CallToolResult {
  const text = sanitizeMessage(message);
  return withTxMeta(plainError(text), wire, { duplicate: false, errorCode: code, errorMessage: text });
}
