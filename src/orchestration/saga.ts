import * as z from 'zod';
import type { McpTx } from '../client/mcpTx.js';
import { type PartialRetryPolicy, PartialRetryPolicySchema } from '../config/retryPolicy.js';
import { parseOrThrow } from '../config/validators.js';
import { errorCodeTraits, isTxError, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import type { JsonObject, TxResult } from '../core/types.js';
import type { EventStore, TxEvent } from '../events/eventStore.js';
import {
  readSagaHistory,
  SagaEvent,
  type SagaHistory,
  type SagaResult,
  type StepFailure,
  sagaResultOf,
  unsettledFailure,
} from './sagaHistory.js';

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
  /** Undoes the action when a later step fails. */
  readonly compensation?: {
    readonly tool: string;
    /** Makes the compensation's arguments from the action's arguments and its result's `data`. */
    readonly args: (actionArgs: JsonObject, actionData: unknown) => JsonObject;
  };
}

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
 * success. Only a server that dedupes is asked so (`tx.serverDedupes`: it advertises the `dedupe`
 * feature, or `trustServerDedupe` is set; another server would run the step again). If the step stays unsettled, the saga ends `unsettled`, never `compensated`.
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
    await this.log(sagaId, SagaEvent.started, { steps: this.steps.map((step) => step.name) });
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
    return sagaResultOf(
      sagaId,
      this.steps.map((step) => step.name),
      history,
    );
  }

  private async runForward(sagaId: string, history: SagaHistory): Promise<void> {
    for (const step of this.steps) {
      if (history.completed.has(step.name)) continue;
      const outcome = await this.callStep(sagaId, step);
      if (!outcome.ok) {
        await this.log(sagaId, SagaEvent.stepFailed, {
          step: step.name,
          ...describe(outcome.error),
          outcomeUnknown: mayHaveRun(outcome.error),
        });
        return;
      }
      await this.log(sagaId, SagaEvent.stepCompleted, { step: step.name, data: outcome.value.data });
    }
    await this.log(sagaId, SagaEvent.ended, { status: 'completed' });
  }

  /** After a step failed: settles it if its outcome is unknown, compensates, and logs how the saga ended. */
  private async windDown(sagaId: string, history: SagaHistory): Promise<SagaHistory> {
    const unknown = unsettledFailure(history);
    if (unknown !== undefined) await this.settle(sagaId, unknown);
    const settled = unknown === undefined ? history : await this.history(sagaId);
    const status = await this.compensate(sagaId, settled);
    await this.log(sagaId, SagaEvent.ended, {
      status: unsettledFailure(settled) === undefined ? status : 'unsettled',
    });
    return this.history(sagaId);
  }

  /**
   * Learns whether a failed step ran: calls it again with its key, which the server answers with
   * the stored result if it ran, waits for if it is still running, and runs if it never arrived.
   * A success logs the step completed (so it is compensated), a failure the server answered logs
   * it failed for sure; anything else leaves it unsettled. Only on a server that dedupes
   * (`tx.serverDedupes`: the `dedupe` feature, or `trustServerDedupe`): elsewhere the call would run the step again.
   */
  private async settle(sagaId: string, failure: StepFailure): Promise<void> {
    const step = this.steps.find((candidate) => candidate.name === failure.step);
    if (step === undefined || !this.tx.serverDedupes) return;
    const outcome = await this.callStep(sagaId, step, {
      ...DEFAULT_SETTLE_RETRY,
      ...this.options.settleRetry,
    });
    if (outcome.ok) {
      await this.log(sagaId, SagaEvent.stepCompleted, { step: step.name, data: outcome.value.data });
    } else if (isTxError(outcome.error) && errorCodeTraits(outcome.error.code).answered) {
      await this.log(sagaId, SagaEvent.stepFailed, {
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
        await this.log(sagaId, SagaEvent.compensated, { step: step.name });
      } else {
        allUndone = false;
        await this.log(sagaId, SagaEvent.compensationFailed, { step: step.name, ...describe(outcome.error) });
      }
    }
    return allUndone ? 'compensated' : 'failed';
  }

  private async log(sagaId: string, type: string, data: Record<string, unknown>): Promise<TxEvent> {
    return this.events.append({ type, transactionId: sagaId, data });
  }

  private history(sagaId: string): Promise<SagaHistory> {
    return readSagaHistory(this.events, sagaId);
  }
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
