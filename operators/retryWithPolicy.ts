import {
  asyncScheduler,
  from,
  type Observable,
  retry,
  type SchedulerLike,
  type Subscriber,
  Subscription,
  switchMap,
  take,
  throwError,
  timer,
} from 'rxjs';
import * as z from 'zod';
import { type TxCall, withCallMeta } from '../src/call/call.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import {
  mergeRetry,
  type PartialRetryPolicy,
  type RetryPolicy,
  retryDelay,
} from '../src/config/retryPolicy.js';
import { parseOrThrow, SchedulerSchema } from '../src/config/validators.js';
import { matchesRetryable } from '../src/core/classify.js';
import { errorCodeTraits, isTxError, TxError, TxErrorCode, validationError } from '../src/core/errors.js';
import type { TxResult } from '../src/core/types.js';

const RetryOptionsSchema = z.strictObject({
  scheduler: SchedulerSchema.optional(),
  random: z
    .custom<() => number>((value) => typeof value === 'function', 'must be a function () => number')
    .optional(),
});

/**
 * Options of {@link retryWithPolicy} that are not part of the policy, all optional:
 *
 * - `scheduler` (`asyncScheduler`): the clock and timers of the delays and the deadline.
 * - `random` (`Math.random`): `() => number` in [0, 1), the jitter's source.
 *
 * @example
 * retryWithPolicy({ maxAttempts: 4 }, { scheduler: testScheduler, random: () => 0.5 });
 */
export type RetryOptions = z.input<typeof RetryOptionsSchema>;

const AMBIGUOUS_HINT =
  'not retried: the request may already have run on the server and the tool is not known to be safe to repeat; ' +
  'to allow it, call with an idempotencyKey on a server that dedupes (the dedupe feature, or trustServerDedupe), annotate the tool idempotentHint or readOnlyHint, ' +
  'or set retry: { retryAmbiguous: true }';

/**
 * Retries a call with exponential backoff (`baseDelayMs * multiplier^(n-1)`, capped at
 * `maxDelayMs`, with jitter) up to `maxAttempts`, within an optional overall `deadlineMs`. Only
 * retryable errors are retried (`retryOn`, else codes listed in `retryableErrors`, tool errors whose
 * text contains one of them, and errors marked retryable); a server's retry-after hint wins over the
 * computed delay. **Retry safety**: a failure that may have run the tool (a timeout, a connection
 * lost after sending) is retried only when a repeat cannot do harm — the tool is annotated
 * `idempotentHint` or `readOnlyHint`, the call has an idempotency key and the server dedupes (it
 * advertises the `dedupe` feature, or the config's `trustServerDedupe` is set), or `retryAmbiguous`
 * is set; otherwise the error says why it was not retried.
 *
 * **Store outages**: a `MCP_TX_STORE_UNAVAILABLE` raised in this process (a Redis limiter, breaker
 * or store inside the retry, down or stalled) is not retried unless the policy lists the code in
 * `retryableErrors` or `retryOn` accepts it: the next attempt would wait on the same store, so by
 * default a dead Redis fails the call within one `commandTimeoutMs`. One a server reports in its
 * answer (`_meta.mcp_tx.error_code`: the server's own store failed) is retried like any retryable
 * error, with backoff: each attempt costs a round trip, not a wait on a local store, and a later one
 * may find the server's store back (a `txTool` server dedupes a keyed repeat in that store).
 *
 * `maxAttempts` bounds the tries: one refused before anything was sent (an open breaker, a full
 * limiter queue, inside the retry) uses one up, and ends the call unless `retryOn` says otherwise.
 * `meta.attempts` counts only the attempts sent; a call that ends refused keeps the failure of its
 * last attempt sent as the error's `cause`.
 *
 * @example
 * tx.attempt$('get_weather', { city: 'Lyon' })
 *   .pipe(retryWithPolicy({ maxAttempts: 5, baseDelayMs: 200, deadlineMs: 10_000 }))
 *   .subscribe(({ meta }) => console.log(`took ${meta.attempts} attempts`));
 */
export function retryWithPolicy(policy: PartialRetryPolicy = {}, options: RetryOptions = {}): TxOperator {
  const resolved = mergeRetry(policy);
  if (resolved === false) throw validationError('retry', 'must be a retry policy object');
  const { scheduler = asyncScheduler, random = Math.random } = parseOrThrow(
    RetryOptionsSchema,
    options,
    'options',
  );
  return txOperator('retryWithPolicy', (call) =>
    call.derive((subscriber) => new RetryRun(call, resolved, scheduler, random, subscriber).start()),
  );
}

/**
 * One subscription of a retried call: the first attempt's observer, and on its failure the retries
 * (see {@link retriesAfter}). What the retries need (their observer, the backoff's context) is
 * built only when the first attempt fails, so that a call whose first attempt succeeds (most) pays
 * for this object and the subscription of its attempts.
 */
class RetryRun {
  private readonly attempts = new Subscription();
  private deadline?: Subscription;
  private deadlineAt = Infinity;
  private lastSentFailure: unknown;

  constructor(
    private readonly call: TxCall,
    private readonly policy: RetryPolicy,
    private readonly scheduler: SchedulerLike,
    private readonly random: () => number,
    private readonly subscriber: Subscriber<TxResult>,
  ) {}

  start(): Subscription {
    const { deadlineMs } = this.policy;
    if (deadlineMs !== undefined) this.deadlineAt = this.scheduler.now() + deadlineMs;
    this.attempts.add(this.call.subscribe(this));
    if (deadlineMs !== undefined && !this.subscriber.closed) {
      this.deadline = this.scheduler.schedule(() => {
        this.attempts.unsubscribe();
        this.fail(deadlineError(this.call, deadlineMs));
      }, deadlineMs);
      this.subscriber.add(this.deadline);
    }
    return this.attempts;
  }

  /** An attempt succeeded: the deadline no longer applies. */
  next(result: TxResult): void {
    this.deadline?.unsubscribe();
    this.subscriber.next(result);
  }

  /** The first attempt failed: the retries take over (or the error ends the call). */
  error(error: unknown): void {
    const relay = {
      next: (result: TxResult) => this.next(result),
      error: (failure: unknown) => this.fail(failure),
      complete: () => this.complete(),
    };
    const delay = (failure: unknown, retryNumber: number) => {
      if (!isRefusal(failure)) this.lastSentFailure = failure;
      return nextRetry(this.retryContext(), failure, retryNumber);
    };
    this.attempts.add(retriesAfter(this.call, this.policy, delay, error).subscribe(relay));
  }

  /** The attempt (or, after a failure, the retries) completed. */
  complete(): void {
    this.subscriber.complete();
  }

  private retryContext(): RetryContext {
    const { call, policy, scheduler, random, deadlineAt } = this;
    return { call, policy, scheduler, random, deadlineAt };
  }

  private fail(error: unknown): void {
    this.subscriber.error(failedAfter(this.call, error, this.lastSentFailure));
  }
}

/**
 * The attempts after the first failed with `error`, as RxJS's `retry` makes them: built only then,
 * so that a call whose first attempt succeeds (most) pays for no retry machinery.
 */
function retriesAfter(
  call: TxCall,
  policy: RetryPolicy,
  delay: (error: unknown, retryNumber: number) => Observable<unknown>,
  error: unknown,
): Observable<TxResult> {
  if (policy.maxAttempts <= 1) return throwError(() => error);
  return delay(error, 1).pipe(
    take(1),
    switchMap(() =>
      call.pipe(
        retry({
          count: policy.maxAttempts - 2,
          delay: (next: unknown, retryNumber: number) => delay(next, retryNumber + 1),
        }),
      ),
    ),
  );
}

interface RetryContext {
  readonly call: TxCall;
  readonly policy: RetryPolicy;
  readonly scheduler: SchedulerLike;
  readonly random: () => number;
  readonly deadlineAt: number;
}

/** Emits when the next attempt may start, or errors with why there is none. */
function nextRetry(context: RetryContext, error: unknown, retryNumber: number): Observable<unknown> {
  const { call, policy } = context;
  if (!isRetryable(error, policy, retryNumber)) return throwError(() => error);
  if (!(error instanceof TxError) || !error.ambiguous || repeatIsSafe(call, policy)) {
    return waitBeforeRetry(context, error, retryNumber);
  }
  return from(toolIsIdempotent(call)).pipe(
    switchMap((idempotent) =>
      idempotent
        ? waitBeforeRetry(context, error, retryNumber)
        : throwError(() => error.withRetryable(false, AMBIGUOUS_HINT)),
    ),
  );
}

function isRetryable(error: unknown, policy: RetryPolicy, attempt: number): boolean {
  if (policy.retryOn !== undefined) return policy.retryOn(error, attempt);
  if (!(error instanceof TxError) || errorCodeTraits(error.code).neverRetried) return false;
  if (policy.retryableErrors.includes(error.code)) return true;
  if (isLocalStoreOutage(error)) return false;
  if (error.code === TxErrorCode.ToolError) return matchesRetryable(error.message, policy.retryableErrors);
  return error.retryable;
}

/**
 * A `MCP_TX_STORE_UNAVAILABLE` of this process — its limiter's, breaker's or store's Redis failed
 * or stalled past `commandTimeoutMs` — rather than one a server reported in its answer
 * (`_meta.mcp_tx.error_code`, which the attempt stamps `ack: true`). Retrying it by default would
 * only wait on the same store again (attempts × `commandTimeoutMs` plus the backoff), so it is
 * retried only when the policy names the code or `retryOn` accepts it.
 */
function isLocalStoreOutage(error: TxError): boolean {
  return error.code === TxErrorCode.StoreUnavailable && error.meta?.ack !== true;
}

/**
 * Safe without asking the server: the user opted in, or the server dedupes on the call's key — it
 * advertises the `dedupe` feature (or `trustServerDedupe` vouches for it); speaking MCP-Tx is not
 * enough (a Python MCP-Tx 0.1.0 server runs a keyed repeat again).
 */
function repeatIsSafe(call: TxCall, policy: RetryPolicy): boolean {
  return policy.retryAmbiguous || (call.request.idempotencyKey !== undefined && call.env.serverDedupes());
}

/** Is the tool annotated safe to repeat? Unknown (or a failed lookup) is not. */
async function toolIsIdempotent(call: TxCall): Promise<boolean> {
  const annotations = await call.env.toolAnnotations(call.request.name).catch(() => undefined);
  return annotations?.idempotentHint === true || annotations?.readOnlyHint === true;
}

function waitBeforeRetry(context: RetryContext, error: unknown, retryNumber: number): Observable<unknown> {
  const { call, policy, scheduler, random, deadlineAt } = context;
  const hint = error instanceof TxError ? error.retryAfterMs : undefined;
  const delayMs =
    hint !== undefined && Number.isFinite(hint) && hint >= 0 ? hint : retryDelay(policy, retryNumber, random);
  if (scheduler.now() + delayMs >= deadlineAt) {
    const reason = `not retried: the next attempt would start after the ${policy.deadlineMs} ms deadline`;
    return throwError(() => (error instanceof TxError ? error.withRetryable(false, reason) : error));
  }
  if (error instanceof TxError) call.state.notifyRetry({ attempt: retryNumber, delayMs, error });
  return timer(delayMs, scheduler);
}

function deadlineError(call: TxCall, deadlineMs: number): TxError {
  return new TxError(
    TxErrorCode.Timeout,
    `The ${deadlineMs} ms retry deadline of ${call.request.name} passed before it completed (${call.state.attempts} attempts)`,
    { retryable: false, ambiguous: true },
  );
}

/** A try refused before anything was sent: the breaker was open, or the limiter's queue was full. */
function isRefusal(error: unknown): error is TxError {
  return isTxError(error) && errorCodeTraits(error.code).refusal;
}

/**
 * The error the call gives up with, carrying the call's metadata (`attempts`: those sent). A refusal
 * keeps the failure of the last attempt sent as its `cause`, so that it is not lost.
 */
function failedAfter(call: TxCall, error: unknown, lastSentFailure: unknown): unknown {
  const stamped = withCallMeta(call, error);
  if (lastSentFailure === undefined || !isRefusal(stamped) || stamped.cause !== undefined) return stamped;
  return stamped.withCause(lastSentFailure);
}
