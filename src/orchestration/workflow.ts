import {
  catchError,
  concat,
  concatMap,
  defer,
  from,
  lastValueFrom,
  map,
  type Observable,
  of,
  takeWhile,
} from 'rxjs';
import * as z from 'zod';
import type { McpTx } from '../client/mcpTx.js';
import type { TxCallOptions } from '../client/options.js';
import { functionSchema, hasMethod, parseOrThrow } from '../config/validators.js';
import { isTxError, TxError, TxErrorCode, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import type { JsonObject, TxResult } from '../core/types.js';

/**
 * One step: a tool and its arguments, fixed or made from the steps before it.
 *
 * @example
 * const load: WorkflowStep = {
 *   name: 'load',
 *   tool: 'load_rows',
 *   args: (_previous, results) => ({ rows: results.extract?.data as JsonObject[] }),
 *   options: { timeoutMs: 60_000 },
 * };
 */
export interface WorkflowStep {
  readonly name: string;
  readonly tool: string;
  /**
   * The step's arguments (default `{}`), or a function that makes them from the previous step's
   * result and the results of all steps so far, by step name. A function that throws fails the step
   * with `MCP_TX_VALIDATION`.
   */
  readonly args?:
    | JsonObject
    | ((previous: TxResult | undefined, results: Readonly<Record<string, TxResult>>) => JsonObject);
  /** Call options; `transactionId` is the workflow's and the idempotency key defaults to `<id>:<step>`. */
  readonly options?: Omit<TxCallOptions, 'transactionId'>;
}

/**
 * What one step did: its call's request id, attempts and whether it was answered as a duplicate;
 * `data` when it completed, `errorCode` and `errorMessage` when it failed.
 *
 * @example
 * for (const step of state.steps) console.log(step.name, step.status, step.attempts, step.duplicate);
 */
export interface WorkflowStepRecord {
  readonly name: string;
  readonly tool: string;
  readonly status: 'completed' | 'failed';
  readonly requestId?: string;
  readonly attempts: number;
  readonly duplicate: boolean;
  readonly data?: unknown;
  readonly errorCode?: string;
  readonly errorMessage?: string;
}

/**
 * A workflow's state: emitted after each step; the last one is the outcome (`completed`, or
 * `failed` at the first step that failed). `totalAttempts` adds up the attempts of every step.
 *
 * @example
 * const state = await runWorkflow(tx, { id: 'etl-1', steps });
 * if (state.status === 'failed') console.error(state.error?.code, state.steps.at(-1)?.name);
 */
export interface WorkflowState {
  readonly id: string;
  readonly status: 'running' | 'completed' | 'failed';
  readonly steps: readonly WorkflowStepRecord[];
  readonly totalAttempts: number;
  /** The failed step's error. */
  readonly error?: TxError;
}

/**
 * What {@link workflow$} and {@link runWorkflow} run: the workflow id (a new request id if absent),
 * and its steps, one at least, each name once.
 *
 * @example
 * const etl: WorkflowDefinition = { id: 'etl-2026-11-25', steps: [{ name: 'extract', tool: 'extract' }] };
 * await runWorkflow(tx, etl);
 */
export interface WorkflowDefinition {
  readonly id?: string;
  readonly steps: readonly WorkflowStep[];
}

const StepSchema = z.strictObject(
  {
    name: z.string({ message: 'must be a string' }).min(1, 'must not be empty'),
    tool: z.string({ message: 'must be a string' }),
    args: z
      .union([z.record(z.string(), z.unknown()), functionSchema('(previous, results) => args')], {
        message: 'must be a JSON object or a function (previous, results) => args',
      })
      .optional(),
    options: z.record(z.string(), z.unknown(), { message: 'must be call options' }).optional(),
  },
  { message: 'must be a step { name, tool, args?, options? }' },
);

/**
 * The definition: an object with one step at least (a workflow of none would report `completed`
 * having done nothing, which hides a list emptied by mistake), each step named once (the name keys
 * its result and its idempotency key `<id>:<name>`: a second step of the same name would be
 * answered as a duplicate of the first). Its id, tools, arguments and options are checked by each
 * step's call.
 */
const WorkflowSchema = z.strictObject(
  {
    id: z.string({ message: 'must be a string' }).optional(),
    steps: z
      .array(StepSchema, { message: 'must be an array of steps' })
      .min(1, 'must have at least one step')
      .refine((steps) => new Set(steps.map((step) => step.name)).size === steps.length, {
        message: 'must not have two steps of the same name',
      }),
  },
  { message: 'must be a workflow { id?, steps }' },
);

/** Throws `MCP_TX_VALIDATION` naming the field when `tx` or the definition is not usable. */
function assertWorkflow(tx: unknown, definition: unknown): asserts definition is WorkflowDefinition {
  if (!hasMethod(tx, 'call$')) throw validationError('tx', 'must be an McpTx (createMcpTx(...))');
  parseOrThrow(WorkflowSchema, definition, 'workflow');
}

/**
 * Runs tool calls one after another as one transaction: the workflow id is every call's
 * `transaction_id`; each step's idempotency key is `<workflow id>:<step name>`, so running the same
 * workflow id again after a crash does not repeat the steps that finished (the server's `txTool`
 * or a shared `dedupe` store answers them as duplicates). A step can build its arguments from the
 * previous step's result. Emits the state after every step, and stops at the first failure.
 * A definition that is not an object, has no steps or two steps of the same name errors on
 * subscription with `MCP_TX_VALIDATION` naming the field (`workflow.steps`), nothing called.
 *
 * @example
 * workflow$(tx, {
 *   id: 'etl-2026-11-25',
 *   steps: [
 *     { name: 'extract', tool: 'extract', args: { source: 'orders' } },
 *     { name: 'load', tool: 'load', args: (previous) => ({ rows: previous?.data as JsonObject[] }) },
 *   ],
 * }).subscribe((state) => console.log(state.status, state.steps.length));
 */
export function workflow$(tx: McpTx, definition: WorkflowDefinition): Observable<WorkflowState> {
  return defer(() => {
    assertWorkflow(tx, definition);
    const id = definition.id ?? newRequestId();
    const results: Record<string, TxResult> = {};
    let state: WorkflowState = { id, status: 'running', steps: [], totalAttempts: 0 };
    let previous: TxResult | undefined;
    const stepStates = from(definition.steps).pipe(
      concatMap((step) =>
        runStep(tx, id, step, previous, results).pipe(
          map(({ record, result, error }) => {
            if (result !== undefined) {
              previous = result;
              results[step.name] = result;
            }
            state = advance(state, record, error);
            return state;
          }),
        ),
      ),
      takeWhile((current) => current.status !== 'failed', true),
    );
    const finished = defer(() =>
      state.status === 'failed' ? of() : of({ ...state, status: 'completed' as const }),
    );
    return concat(stepStates, finished);
  });
}

/**
 * {@link workflow$} as a Promise of its final state (it resolves also when a step failed: see
 * `status`; it rejects with `MCP_TX_VALIDATION` for a bad definition).
 *
 * @example
 * const { status, steps, totalAttempts } = await runWorkflow(tx, { id: 'wf-1', steps });
 */
export function runWorkflow(tx: McpTx, definition: WorkflowDefinition): Promise<WorkflowState> {
  return lastValueFrom(workflow$(tx, definition));
}

interface StepOutcome {
  readonly record: WorkflowStepRecord;
  readonly result?: TxResult;
  readonly error?: TxError;
}

function runStep(
  tx: McpTx,
  id: string,
  step: WorkflowStep,
  previous: TxResult | undefined,
  results: Readonly<Record<string, TxResult>>,
): Observable<StepOutcome> {
  return defer(() => {
    const args = typeof step.args === 'function' ? step.args(previous, results) : (step.args ?? {});
    const options = {
      ...step.options,
      idempotencyKey: step.options?.idempotencyKey ?? `${id}:${step.name}`,
      transactionId: id,
    };
    return tx.call$(step.tool, args, options);
  }).pipe(
    map(
      (result): StepOutcome => ({
        result,
        record: {
          name: step.name,
          tool: step.tool,
          status: 'completed',
          requestId: result.meta.requestId,
          attempts: result.meta.attempts,
          duplicate: result.meta.duplicate,
          data: result.data,
        },
      }),
    ),
    catchError((thrown: unknown) => {
      const error = isTxError(thrown)
        ? thrown
        : new TxError(TxErrorCode.Validation, `Step ${step.name}: ${String(thrown)}`, {
            field: `steps.${step.name}`,
          });
      const record: WorkflowStepRecord = {
        name: step.name,
        tool: step.tool,
        status: 'failed',
        requestId: error.meta?.requestId,
        attempts: error.meta?.attempts ?? 0,
        duplicate: false,
        errorCode: error.code,
        errorMessage: error.message,
      };
      return of({ record, error });
    }),
  );
}

function advance(
  state: WorkflowState,
  record: WorkflowStepRecord,
  error: TxError | undefined,
): WorkflowState {
  const next = {
    ...state,
    steps: [...state.steps, record],
    totalAttempts: state.totalAttempts + record.attempts,
  };
  return error === undefined ? next : { ...next, status: 'failed', error };
}
