import { lastValueFrom, toArray } from 'rxjs';
import { z } from 'zod';
import type { McpTx } from '../client/client.js';
import { type PartialRetryPolicy, PartialRetryPolicySchema } from '../config/retryPolicy.js';
import { parseOrThrow } from '../config/validators.js';
import { errorCodeTraits, isTxError, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import type { JsonObject, TxResult } from '../core/types.js';
import type { EventStore, TxEvent } from '../events/eventStore.js';

/**
 * One step of a saga: an action and, if it must be undone on a later failure, its compensation.
 * Step names must be distinct: they make the calls' idempotency keys.
 *
 * @example
 * const charge: SagaStep = {
 *   name: 'charge',
 *   action: { tool: 'charge_card', args: { orderId: 'o-42', cents: 500 } },
 *   compensation: { tool: 'refund', args: (_args, data) => ({ chargeId: (data as { id: string }).id }) },
 * };
 */
export interface SagaStep {
  readonly name: string;
  readonly action: { readonly tool: string; readonly args: JsonObject };
  /** Undoes the action; its arguments are made from the action's arguments and result data. */
  readonly compensation?: {
    readonly tool: string;
    /** Makes the compensation's arguments from the action's arguments and its result's `data`. */
    readonly args: (actionArgs: JsonObject, actionData: unknown) => JsonObject;
  };
}

/**
 * How a saga ended. `completedSteps` lists the actions that ran (in order), `compensatedSteps` the
 * ones undone (in the order they were undone), `compensationFailures` the compensations that still
 * failed after their retries. A failed step found to have run after all (see `unsettled`) is both
 * the `failedStep` and one of the `completedSteps`, and is compensated like them.
 *
 * @example
 * const result = await saga.run();
 * if (result.status === 'unsettled') console.error(`${result.failedStep} may have run: resume later`);
 * else if (result.status !== 'completed') console.error(result.failedStep, result.compensationFailures);
 */
export interface SagaResult {
  readonly sagaId: string;
  /**
   * - `completed`: every step ran.
   * - `compensated`: a step failed and every step that ran was undone.
   * - `failed`: a step failed and some compensations still failed (`compensationFailures`).
   * - `unsettled`: the failed step's call ended without saying whether it ran (a timeout, a lost
   *   connection, its key still in progress elsewhere…) and calling it again with its key could not
   *   tell either: the steps known to have run were compensated, but the failed step may still have
   *   had its effect (`compensationFailures` lists any compensation that failed too).
   *   `resume(sagaId)` later tries again to settle it, and finishes the saga.
   */
  readonly status: 'completed' | 'compensated' | 'failed' | 'unsettled';
  readonly completedSteps: readonly string[];
  readonly failedStep?: string;
  /** How `failedStep` last failed (when it was called again to settle it, that call's failure). */
  readonly error?: { readonly code: string; readonly message: string };
  readonly compensatedSteps: readonly string[];
  readonly compensationFailures: ReadonlyArray<{
    readonly step: string;
    readonly code: string;
    readonly message: string;
  }>;
}

/** A step's failure as logged; `outcomeUnknown`: the step may have run (see {@link mayHaveRun}). */
interface StepFailure {
  readonly step: string;
  readonly code: string;
  readonly message: string;
  readonly outcomeUnknown: boolean;
}

/** What the event log says about one saga. */
interface SagaHistory {
  readonly started: boolean;
  readonly completed: Map<string, unknown>;
  readonly failure?: StepFailure;
  readonly compensated: Set<string>;
  readonly ended?: SagaResult['status'];
}

const EVENT = {
  started: 'SagaStarted',
  stepCompleted: 'SagaStepCompleted',
  stepFailed: 'SagaStepFailed',
  compensated: 'SagaCompensated',
  compensationFailed: 'SagaCompensationFailed',
  ended: 'SagaEnded',
} as const;

const SagaOptionsSchema = z.strictObject({
  compensationRetry: PartialRetryPolicySchema.optional(),
  settleRetry: PartialRetryPolicySchema.optional(),
});

/** How a step whose outcome is unknown is called again, over the config's retry policy. */
const DEFAULT_SETTLE_RETRY: PartialRetryPolicy = { maxAttempts: 5 };

/**
 * A saga: steps with compensations, run in order; when a step fails, the completed steps are
 * compensated in reverse order (compensations are retried; one that still fails is reported, not
 * swallowed). Every transition is appended to the event store before the saga moves on, so that
 * `resume(sagaId)` in another process finishes a saga interrupted by a crash — forward or
 * compensating — without running a completed step or compensation twice: step calls carry the
 * keys `saga-<id>-<step>` and `compensate-<id>-<step>`, and a call the crash cut short is answered
 * by the server's `txTool` as a duplicate. An event store that fails to append interrupts the saga
 * the same way: `run()` rejects with its error, and `resume(sagaId)` finishes it.
 *
 * A step whose call fails without saying whether it ran (a timeout, a lost connection, its key in
 * progress) is settled before anything is compensated: it is called again with its key (up to
 * `settleRetry`, default 5 attempts over the config's backoff), and compensated too if that answers
 * success. Only an MCP-Tx server is asked so (it dedupes the key; a plain server would run the step
 * again). If the step stays unsettled, the saga ends `unsettled`, never `compensated`.
 *
 * @example
 * const orderSaga = new Saga(tx, new JsonlEventStore('./sagas.jsonl'), [
 *   { name: 'reserve', action: { tool: 'reserve_stock', args: { sku: 'A1', qty: 1 } },
 *     compensation: { tool: 'release_stock', args: (args) => args } },
 *   { name: 'charge', action: { tool: 'charge_card', args: { cents: 500 } },
 *     compensation: { tool: 'refund', args: (_args, data) => ({ chargeId: (data as { id: string }).id }) } },
 * ]);
 * const result = await orderSaga.run();           // or, after a crash: await orderSaga.resume(sagaId)
 */
export class Saga {
  private readonly options: z.output<typeof SagaOptionsSchema>;

  /**
   * `options.compensationRetry` and `options.settleRetry`: retry policies of the compensations and
   * of the calls that settle a step whose outcome is unknown, over the config's.
   */
  constructor(
    private readonly tx: McpTx,
    private readonly events: EventStore,
    private readonly steps: readonly SagaStep[],
    options: {
      readonly compensationRetry?: PartialRetryPolicy;
      readonly settleRetry?: PartialRetryPolicy;
    } = {},
  ) {
    const names = new Set(steps.map((step) => step.name));
    if (steps.length === 0 || names.size !== steps.length) {
      throw validationError('steps', 'must be a non-empty list of steps with distinct names');
    }
    this.options = parseOrThrow(SagaOptionsSchema, options, 'options');
  }

  /** Starts a new saga (with a fresh id unless given) and runs it to its end. */
  async run(sagaId: string = newRequestId()): Promise<SagaResult> {
    if ((await this.history(sagaId)).started)
      throw validationError('sagaId', `saga ${sagaId} already exists`);
    await this.log(sagaId, EVENT.started, { steps: this.steps.map((step) => step.name) });
    return this.proceed(sagaId);
  }

  /**
   * Finishes a saga from its event log: forward if no step failed, else compensating; an
   * `unsettled` saga is settled again first. A saga that ended otherwise is only reported.
   */
  async resume(sagaId: string): Promise<SagaResult> {
    if (!(await this.history(sagaId)).started)
      throw validationError('sagaId', `no saga ${sagaId} in the event log`);
    return this.proceed(sagaId);
  }

  private async proceed(sagaId: string): Promise<SagaResult> {
    let history = await this.history(sagaId);
    if (history.ended === undefined && history.failure === undefined) {
      await this.runForward(sagaId, history);
      history = await this.history(sagaId);
    }
    if (history.ended === undefined || history.ended === 'unsettled') {
      history = await this.windDown(sagaId, history);
    }
    return this.resultOf(sagaId, history, await this.compensationFailures(sagaId));
  }

  private async runForward(sagaId: string, history: SagaHistory): Promise<void> {
    for (const step of this.steps) {
      if (history.completed.has(step.name)) continue;
      const outcome = await this.callStep(sagaId, step);
      if (!outcome.ok) {
        await this.log(sagaId, EVENT.stepFailed, {
          step: step.name,
          ...describe(outcome.error),
          outcomeUnknown: mayHaveRun(outcome.error),
        });
        return;
      }
      await this.log(sagaId, EVENT.stepCompleted, { step: step.name, data: outcome.value.data });
    }
    await this.log(sagaId, EVENT.ended, { status: 'completed' });
  }

  /** After a step failed: settles it if its outcome is unknown, compensates, and logs how the saga ended. */
  private async windDown(sagaId: string, history: SagaHistory): Promise<SagaHistory> {
    const unknown = unsettledFailure(history);
    if (unknown !== undefined) await this.settle(sagaId, unknown);
    const settled = unknown === undefined ? history : await this.history(sagaId);
    const status = await this.compensate(sagaId, settled);
    await this.log(sagaId, EVENT.ended, {
      status: unsettledFailure(settled) === undefined ? status : 'unsettled',
    });
    return this.history(sagaId);
  }

  /**
   * Learns whether a failed step ran: calls it again with its key, which the server answers with
   * the stored result if it ran, waits for if it is still running, and runs if it never arrived.
   * A success logs the step completed (so it is compensated), a failure the server answered logs
   * it failed for sure; anything else leaves it unsettled. Not on a server that does not dedupe.
   */
  private async settle(sagaId: string, failure: StepFailure): Promise<void> {
    const step = this.steps.find((candidate) => candidate.name === failure.step);
    if (step === undefined || !this.tx.serverSupportsTx) return;
    const outcome = await this.callStep(sagaId, step, {
      ...DEFAULT_SETTLE_RETRY,
      ...this.options.settleRetry,
    });
    if (outcome.ok) {
      await this.log(sagaId, EVENT.stepCompleted, { step: step.name, data: outcome.value.data });
    } else if (isTxError(outcome.error) && errorCodeTraits(outcome.error.code).answered) {
      await this.log(sagaId, EVENT.stepFailed, {
        step: step.name,
        ...describe(outcome.error),
        outcomeUnknown: false,
      });
    }
  }

  private callStep(sagaId: string, step: SagaStep, retry?: PartialRetryPolicy): Promise<Outcome<TxResult>> {
    return outcomeOf(() =>
      this.tx.call(step.action.tool, step.action.args, {
        idempotencyKey: `saga-${sagaId}-${step.name}`,
        transactionId: sagaId,
        ...(retry && { retry }),
      }),
    );
  }

  /** Compensates the completed steps in reverse order; `compensated` if all of them were undone. */
  private async compensate(sagaId: string, history: SagaHistory): Promise<'compensated' | 'failed'> {
    let allUndone = true;
    for (const step of [...this.steps].reverse()) {
      const { compensation } = step;
      if (!history.completed.has(step.name) || history.compensated.has(step.name) || !compensation) continue;
      const outcome = await outcomeOf(() =>
        this.tx.call(
          compensation.tool,
          compensation.args(step.action.args, history.completed.get(step.name)),
          {
            idempotencyKey: `compensate-${sagaId}-${step.name}`,
            transactionId: sagaId,
            retry: { retryAmbiguous: true, ...this.options.compensationRetry },
          },
        ),
      );
      if (outcome.ok) {
        await this.log(sagaId, EVENT.compensated, { step: step.name });
      } else {
        allUndone = false;
        await this.log(sagaId, EVENT.compensationFailed, { step: step.name, ...describe(outcome.error) });
      }
    }
    return allUndone ? 'compensated' : 'failed';
  }

  private async log(sagaId: string, type: string, data: Record<string, unknown>): Promise<TxEvent> {
    return this.events.append({ type, transactionId: sagaId, data });
  }

  private async sagaEvents(sagaId: string): Promise<TxEvent[]> {
    return lastValueFrom(this.events.read$({ transactionId: sagaId }).pipe(toArray()));
  }

  private async history(sagaId: string): Promise<SagaHistory> {
    const completed = new Map<string, unknown>();
    const compensated = new Set<string>();
    let started = false;
    let failure: StepFailure | undefined;
    let ended: SagaHistory['ended'];
    for (const event of await this.sagaEvents(sagaId)) {
      const data = event.data ?? {};
      if (event.type === EVENT.started) started = true;
      else if (event.type === EVENT.stepCompleted) completed.set(String(data.step), data.data);
      else if (event.type === EVENT.stepFailed)
        failure = {
          step: String(data.step),
          code: String(data.code),
          message: String(data.message),
          outcomeUnknown: data.outcomeUnknown === true,
        };
      else if (event.type === EVENT.compensated) compensated.add(String(data.step));
      else if (event.type === EVENT.ended) ended = data.status as SagaResult['status'];
    }
    return { started, completed, compensated, ...(failure && { failure }), ...(ended && { ended }) };
  }

  private async compensationFailures(sagaId: string): Promise<SagaResult['compensationFailures']> {
    const failures = (await this.sagaEvents(sagaId)).filter(
      (event) => event.type === EVENT.compensationFailed,
    );
    const latest = new Map(failures.map((event) => [String(event.data?.step), event]));
    return [...latest].map(([step, event]) => ({
      step,
      code: String(event.data?.code),
      message: String(event.data?.message),
    }));
  }

  private resultOf(
    sagaId: string,
    history: SagaHistory,
    compensationFailures: SagaResult['compensationFailures'],
  ): SagaResult {
    const compensatedSteps = this.steps
      .map((step) => step.name)
      .filter((name) => history.compensated.has(name))
      .reverse();
    const unresolved = compensationFailures.filter((failure) => !history.compensated.has(failure.step));
    return {
      sagaId,
      status: history.ended ?? 'failed',
      completedSteps: this.steps.map((step) => step.name).filter((name) => history.completed.has(name)),
      ...(history.failure && {
        failedStep: history.failure.step,
        error: { code: history.failure.code, message: history.failure.message },
      }),
      compensatedSteps,
      compensationFailures: unresolved,
    };
  }
}

/** The logged failure of a step that may have run and was not found to have run, if any. */
function unsettledFailure(history: SagaHistory): StepFailure | undefined {
  const { failure } = history;
  return failure?.outcomeUnknown && !history.completed.has(failure.step) ? failure : undefined;
}

/**
 * May the step have run although its call failed? Yes after a failure that may have reached the
 * server (ambiguous, or timeout, network, store or key-in-progress codes), and after a refusal
 * before sending (open circuit, rate limit, cancel) that came after attempts were sent (`meta.attempts`
 * counts only those).
 */
function mayHaveRun(error: unknown): boolean {
  if (!isTxError(error)) return false;
  const { outcomeUnknown, refusal, status } = errorCodeTraits(error.code);
  if (error.ambiguous || outcomeUnknown) return true;
  return (refusal || status === 'cancelled') && (error.meta?.attempts ?? 0) > 0;
}

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** How `call` settled, so that only the call, never what the caller does next, is caught. */
async function outcomeOf<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error };
  }
}

function describe(error: unknown): { code: string; message: string } {
  return isTxError(error)
    ? { code: error.code, message: error.message }
    : { code: 'Error', message: error instanceof Error ? error.message : String(error) };
}
