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
import { type SwitchableStage, stageIsOn, toolStageSettings } from './resolve.js';

/** The operators that apply to every call of one tool, built once. */
interface ToolStages {
  readonly throttle?: TxOperator;
  readonly circuitBreak?: TxOperator;
  readonly retry?: TxOperator;
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
  }

  /** Wraps one attempt in the pipeline for its tool and options. */
  apply(attempt: TxCall, options: TxCallOptions | undefined): TxCall {
    const { name, options: attemptOptions } = attempt.request;
    const policy = this.policyOf(name);
    const on = (stage: SwitchableStage, operator: TxOperator | undefined): operator is TxOperator =>
      operator !== undefined && stageIsOn(stage, policy, options);
    const stages = this.stagesFor(name, options);
    let call = attempt;
    if (on('limiter', stages.throttle)) call = stages.throttle(call);
    if (on('breaker', stages.circuitBreak)) call = stages.circuitBreak(call);
    if (stages.retry) call = stages.retry(call);
    call = cancelledBy(call, [attemptOptions.signal, this.closed]);
    if (on('dedupe', this.dedupe)) call = this.dedupe(call);
    if (on('monitor', this.monitor)) call = this.monitor(call);
    if (on('record', this.record)) call = this.record(call);
    if (on('trace', this.trace)) call = this.trace(call);
    return call;
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
