import { lastValueFrom, toArray } from 'rxjs';
import type { McpTx } from '../client.js';
import { isTxError, validationError } from '../errors.js';
import type { EventStore, TxEvent } from '../events/eventStore.js';
import { newRequestId } from '../ids.js';
import type { PartialRetryPolicy } from '../schemas.js';
import type { JsonObject } from '../types.js';

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
 * failed after their retries.
 *
 * @example
 * const result = await saga.run();
 * if (result.status !== 'completed') console.error(result.failedStep, result.compensationFailures);
 */
export interface SagaResult {
  readonly sagaId: string;
  /** `compensated`: a step failed and every completed step was undone; `failed`: some could not be. */
  readonly status: 'completed' | 'compensated' | 'failed';
  readonly completedSteps: readonly string[];
  readonly failedStep?: string;
  readonly error?: { readonly code: string; readonly message: string };
  readonly compensatedSteps: readonly string[];
  readonly compensationFailures: ReadonlyArray<{
    readonly step: string;
    readonly code: string;
    readonly message: string;
  }>;
}

/** What the event log says about one saga. */
interface SagaHistory {
  readonly started: boolean;
  readonly completed: Map<string, unknown>;
  readonly failure?: { step: string; code: string; message: string };
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

/**
 * A saga: steps with compensations, run in order; when a step fails, the completed steps are
 * compensated in reverse order (compensations are retried; one that still fails is reported, not
 * swallowed). Every transition is appended to the event store before the saga moves on, so that
 * `resume(sagaId)` in another process finishes a saga interrupted by a crash — forward or
 * compensating — without running a completed step or compensation twice: step calls carry the
 * keys `saga-<id>-<step>` and `compensate-<id>-<step>`, and a call the crash cut short is answered
 * by the server's `txTool` as a duplicate.
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
  constructor(
    private readonly tx: McpTx,
    private readonly events: EventStore,
    private readonly steps: readonly SagaStep[],
    private readonly options: { readonly compensationRetry?: PartialRetryPolicy } = {},
  ) {
    const names = new Set(steps.map((step) => step.name));
    if (steps.length === 0 || names.size !== steps.length) {
      throw validationError('steps', 'must be a non-empty list of steps with distinct names');
    }
  }

  /** Starts a new saga (with a fresh id unless given) and runs it to its end. */
  async run(sagaId: string = newRequestId()): Promise<SagaResult> {
    if ((await this.history(sagaId)).started)
      throw validationError('sagaId', `saga ${sagaId} already exists`);
    await this.log(sagaId, EVENT.started, { steps: this.steps.map((step) => step.name) });
    return this.proceed(sagaId);
  }

  /** Finishes a saga from its event log: forward if no step failed, else compensating. */
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
    if (history.ended === undefined) {
      const status = await this.compensate(sagaId, history);
      await this.log(sagaId, EVENT.ended, { status });
      history = await this.history(sagaId);
    }
    return this.resultOf(sagaId, history, await this.compensationFailures(sagaId));
  }

  private async runForward(sagaId: string, history: SagaHistory): Promise<void> {
    for (const step of this.steps) {
      if (history.completed.has(step.name)) continue;
      try {
        const { data } = await this.tx.call(step.action.tool, step.action.args, {
          idempotencyKey: `saga-${sagaId}-${step.name}`,
          transactionId: sagaId,
        });
        await this.log(sagaId, EVENT.stepCompleted, { step: step.name, data });
      } catch (error) {
        await this.log(sagaId, EVENT.stepFailed, { step: step.name, ...describe(error) });
        return;
      }
    }
    await this.log(sagaId, EVENT.ended, { status: 'completed' });
  }

  /** Compensates the completed steps in reverse order; `compensated` if all of them were undone. */
  private async compensate(sagaId: string, history: SagaHistory): Promise<SagaResult['status']> {
    let allUndone = true;
    for (const step of [...this.steps].reverse()) {
      if (!history.completed.has(step.name) || history.compensated.has(step.name) || !step.compensation)
        continue;
      try {
        await this.tx.call(
          step.compensation.tool,
          step.compensation.args(step.action.args, history.completed.get(step.name)),
          {
            idempotencyKey: `compensate-${sagaId}-${step.name}`,
            transactionId: sagaId,
            retry: { retryAmbiguous: true, ...this.options.compensationRetry },
          },
        );
        await this.log(sagaId, EVENT.compensated, { step: step.name });
      } catch (error) {
        allUndone = false;
        await this.log(sagaId, EVENT.compensationFailed, { step: step.name, ...describe(error) });
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
    let failure: SagaHistory['failure'];
    let ended: SagaHistory['ended'];
    for (const event of await this.sagaEvents(sagaId)) {
      const data = event.data ?? {};
      if (event.type === EVENT.started) started = true;
      else if (event.type === EVENT.stepCompleted) completed.set(String(data.step), data.data);
      else if (event.type === EVENT.stepFailed)
        failure = { step: String(data.step), code: String(data.code), message: String(data.message) };
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

function describe(error: unknown): { code: string; message: string } {
  return isTxError(error)
    ? { code: error.code, message: error.message }
    : { code: 'Error', message: error instanceof Error ? error.message : String(error) };
}
