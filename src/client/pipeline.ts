import type { SchedulerLike } from 'rxjs';
import { circuitBreak } from '../../operators/circuitBreak.js';
import { dedupe } from '../../operators/dedupe.js';
import { monitor } from '../../operators/monitor.js';
import { record } from '../../operators/record.js';
import { retryWithPolicy } from '../../operators/retryWithPolicy.js';
import { throttle } from '../../operators/throttle.js';
import { trace } from '../../operators/trace.js';
import type { TxCall } from '../call/call.js';
import { cancelledBy } from '../call/cancellation.js';
import type { TxOperator } from '../call/txOperator.js';
import { memoryIdempotencyStore } from '../idempotency/memoryStore.js';
import type { ResolvedTxConfig, ToolPolicy, TxCallOptions } from './options.js';
import { changesOperators, type SwitchableStage, stageIsOn, toolStageSettings } from './resolve.js';

/** The operators that apply to every call of one tool, built once. */
interface ToolStages {
  readonly throttle?: TxOperator;
  readonly circuitBreak?: TxOperator;
  readonly retry?: TxOperator;
}

/** The operators a call goes through, inside and outside its cancellation stage. */
interface CallOperators {
  readonly inner: readonly TxOperator[];
  readonly outer: readonly TxOperator[];
}

/**
 * `tx.call$`'s default pipeline, built from what {@link toolStageSettings} and {@link stageIsOn}
 * resolve of the config, each tool's policy and each call's options:
 *
 * `attempt → throttle → circuitBreak → retryWithPolicy → cancellation → dedupe → monitor → record → trace`
 *
 * A limiter or breaker inside the retry counts every attempt; the cancellation stage (the call's
 * `signal`, and `close()`) sits inside dedupe, monitor, record and trace, which all see a
 * cancellation; dedupe outside the retry makes the retried call one execution; trace outermost makes
 * one span per logical call. Operators are built once per tool and reused; a call that overrides its
 * retry policy gets its own retry operator. The config's `monitor` watches the dedupe store.
 *
 * @example
 * const pipeline = new DefaultPipeline(config, (tool) => policies.get(tool), asyncScheduler);
 * const call = pipeline.apply(attemptCall(env, request), options);
 */
export class DefaultPipeline {
  private readonly stagesByTool = new Map<string, ToolStages>();
  /** Per tool, the operators of a call whose options do not change them: most calls. */
  private readonly defaultOperators = new Map<string, CallOperators>();
  private readonly dedupe?: TxOperator;
  private readonly monitor?: TxOperator;
  private readonly record?: TxOperator;
  private readonly trace?: TxOperator;

  constructor(
    private readonly config: ResolvedTxConfig,
    private readonly policyOf: (tool: string) => ToolPolicy | undefined,
    private readonly scheduler: SchedulerLike,
    /** Aborted when the McpTx stops waiting for its calls at close: every call is then cancelled. */
    private readonly closed?: AbortSignal,
  ) {
    if (config.dedupe !== false) {
      const { store, windowMs, maxBytes, maxEntries } = config.dedupe;
      const dedupeStore = store ?? memoryIdempotencyStore({ windowMs, maxBytes, maxEntries });
      config.monitor?.watchIdempotencyStore(dedupeStore);
      this.dedupe = dedupe(dedupeStore, { windowMs, scheduler });
    }
    if (config.monitor !== undefined) this.monitor = monitor(config.monitor);
    if (config.events !== undefined) this.record = record(config.events);
    if (config.trace !== false) this.trace = trace(config.trace === true ? {} : config.trace);
  }

  /** Forget the operators built for `tool` (its policy changed). */
  invalidate(tool: string): void {
    this.stagesByTool.delete(tool);
    this.defaultOperators.delete(tool);
  }

  /** Wraps one attempt in the pipeline for its tool and options. */
  apply(attempt: TxCall, options: TxCallOptions | undefined): TxCall {
    const { name, options: attemptOptions } = attempt.request;
    const { inner, outer } = this.operatorsFor(name, options);
    let call = attempt;
    for (const operator of inner) call = operator(call);
    call = cancelledBy(call, attemptOptions.signal, this.closed);
    for (const operator of outer) call = operator(call);
    return call;
  }

  private operatorsFor(tool: string, options: TxCallOptions | undefined): CallOperators {
    if (changesOperators(options)) return this.buildOperators(tool, options);
    let operators = this.defaultOperators.get(tool);
    if (operators === undefined) {
      operators = this.buildOperators(tool, undefined);
      this.defaultOperators.set(tool, operators);
    }
    return operators;
  }

  private buildOperators(tool: string, options: TxCallOptions | undefined): CallOperators {
    const policy = this.policyOf(tool);
    const stages = this.stagesFor(tool, options);
    const on = (stage: SwitchableStage, operator: TxOperator | undefined): operator is TxOperator =>
      operator !== undefined && stageIsOn(stage, policy, options);
    const inner: TxOperator[] = [];
    if (on('limiter', stages.throttle)) inner.push(stages.throttle);
    if (on('breaker', stages.circuitBreak)) inner.push(stages.circuitBreak);
    if (stages.retry) inner.push(stages.retry);
    const outer: TxOperator[] = [];
    if (on('dedupe', this.dedupe)) outer.push(this.dedupe);
    if (on('monitor', this.monitor)) outer.push(this.monitor);
    if (on('record', this.record)) outer.push(this.record);
    if (on('trace', this.trace)) outer.push(this.trace);
    return { inner, outer };
  }

  private stagesFor(tool: string, options: TxCallOptions | undefined): ToolStages {
    if (options?.retry !== undefined) return this.buildStages(tool, options.retry);
    let stages = this.stagesByTool.get(tool);
    if (stages === undefined) {
      stages = this.buildStages(tool, undefined);
      this.stagesByTool.set(tool, stages);
    }
    return stages;
  }

  private buildStages(tool: string, callRetry: TxCallOptions['retry']): ToolStages {
    const { limiter, breaker, retry } = toolStageSettings(this.config, this.policyOf(tool), callRetry);
    return {
      throttle: limiter ? throttle(limiter) : undefined,
      circuitBreak: breaker ? circuitBreak(breaker) : undefined,
      retry: retry ? retryWithPolicy(retry, { scheduler: this.scheduler }) : undefined,
    };
  }
}
