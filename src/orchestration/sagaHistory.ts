import { lastValueFrom, toArray } from 'rxjs';
import type { EventStore } from '../events/eventStore.js';

/**
 * The events a saga appends to its event store, one per transition, under its `transactionId`.
 *
 * @example
 * await events.append({ type: SagaEvent.stepCompleted, transactionId: sagaId, data: { step: 'charge', data } });
 */
export const SagaEvent = {
  started: 'SagaStarted',
  stepCompleted: 'SagaStepCompleted',
  stepFailed: 'SagaStepFailed',
  compensated: 'SagaCompensated',
  compensationFailed: 'SagaCompensationFailed',
  ended: 'SagaEnded',
} as const;

/**
 * A step's failure as logged; `outcomeUnknown`: the step may have run.
 *
 * @example
 * const failure: StepFailure = { step: 'charge', code: 'MCP_TX_TIMEOUT', message: 'timed out', outcomeUnknown: true };
 */
export interface StepFailure {
  readonly step: string;
  readonly code: string;
  readonly message: string;
  readonly outcomeUnknown: boolean;
}

/**
 * What the event log says about one saga: whether it started, the steps completed (with their
 * result data) and compensated, the last step failure, the latest failure of each compensation,
 * and how it ended, if it did.
 *
 * @example
 * const history = await readSagaHistory(events, sagaId);
 * if (history.ended === undefined && history.failure === undefined) console.log('still going forward');
 */
export interface SagaHistory {
  readonly started: boolean;
  readonly completed: ReadonlyMap<string, unknown>;
  readonly failure?: StepFailure;
  readonly compensated: ReadonlySet<string>;
  readonly compensationFailures: ReadonlyMap<string, { readonly code: string; readonly message: string }>;
  readonly ended?: SagaResult['status'];
}

/**
 * Replays the events logged for `sagaId` into its {@link SagaHistory}.
 *
 * @example
 * if (!(await readSagaHistory(events, sagaId)).started) throw new Error(`no saga ${sagaId}`);
 */
export async function readSagaHistory(events: EventStore, sagaId: string): Promise<SagaHistory> {
  const logged = await lastValueFrom(events.read$({ transactionId: sagaId }).pipe(toArray()));
  const completed = new Map<string, unknown>();
  const compensated = new Set<string>();
  const compensationFailures = new Map<string, { code: string; message: string }>();
  let started = false;
  let failure: StepFailure | undefined;
  let ended: SagaHistory['ended'];
  for (const event of logged) {
    const { type } = event;
    const data = event.data ?? {};
    const step = String(data.step);
    if (type === SagaEvent.started) started = true;
    else if (type === SagaEvent.stepCompleted) completed.set(step, data.data);
    else if (type === SagaEvent.stepFailed)
      failure = { step, ...describedIn(data), outcomeUnknown: data.outcomeUnknown === true };
    else if (type === SagaEvent.compensated) compensated.add(step);
    else if (type === SagaEvent.compensationFailed) compensationFailures.set(step, describedIn(data));
    else if (type === SagaEvent.ended) ended = data.status as SagaResult['status'];
  }
  return {
    started,
    completed,
    compensated,
    compensationFailures,
    ...(failure && { failure }),
    ...(ended && { ended }),
  };
}

/**
 * The logged failure of a step that may have run and was not found to have run, if any.
 *
 * @example
 * const unknown = unsettledFailure(history);
 * if (unknown !== undefined) console.warn(`${unknown.step} may have run`);
 */
export function unsettledFailure(history: SagaHistory): StepFailure | undefined {
  const { failure } = history;
  return failure?.outcomeUnknown && !history.completed.has(failure.step) ? failure : undefined;
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

/**
 * The saga's result by its history, in the order of its `steps` (compensated ones in reverse);
 * a compensation that failed and then succeeded is not among the `compensationFailures`.
 *
 * @example
 * const result = sagaResultOf(sagaId, ['reserve', 'charge'], await readSagaHistory(events, sagaId));
 */
export function sagaResultOf(sagaId: string, stepNames: readonly string[], history: SagaHistory): SagaResult {
  const { failure } = history;
  return {
    sagaId,
    status: history.ended ?? 'failed',
    completedSteps: stepNames.filter((name) => history.completed.has(name)),
    ...(failure && { failedStep: failure.step, error: { code: failure.code, message: failure.message } }),
    compensatedSteps: stepNames.filter((name) => history.compensated.has(name)).reverse(),
    compensationFailures: [...history.compensationFailures]
      .filter(([step]) => !history.compensated.has(step))
      .map(([step, { code, message }]) => ({ step, code, message })),
  };
}

function describedIn(data: Readonly<Record<string, unknown>>): { code: string; message: string } {
  return { code: String(data.code), message: String(data.message) };
}
