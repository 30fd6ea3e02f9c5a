import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { defer, type Observable, type SchedulerLike } from 'rxjs';
import { v7 as uuidv7 } from 'uuid';
import { type AttemptEnvironment, TxCall, TxCallState } from '../../src/call/call.js';
import { DEFAULT_RETRYABLE_ERRORS } from '../../src/config/retryPolicy.js';
import type { TxRequest, TxResult } from '../../src/core/types.js';

/** A TxResult as an attempt would emit it, for operator tests that run without a server. */
export function okResult(attempts = 1, tool = 'tool'): TxResult {
  return {
    result: { content: [{ type: 'text', text: 'ok' }] },
    data: 'ok',
    meta: {
      version: '0.1.0',
      requestId: 'r',
      tool,
      attempts,
      ack: true,
      processed: true,
      duplicate: false,
      status: 'completed',
      startedAt: new Date(0).toISOString(),
      durationMs: 0,
      serverSupportsTx: true,
    },
  };
}

/**
 * A TxCall whose every subscription runs `attempt(n)` (n = 1, 2, …) instead of calling a server:
 * for virtual-time tests of operators. The environment's scheduler, MCP-Tx support and tool
 * annotations can be set.
 */
export function virtualCall(
  attempt: (attemptNumber: number) => Observable<TxResult>,
  options: {
    scheduler: SchedulerLike;
    request?: Partial<TxRequest>;
    serverSupportsTx?: boolean;
    /** Whether the server dedupes (default: as `serverSupportsTx`). */
    serverDedupes?: boolean;
    annotations?: ToolAnnotations;
  },
): TxCall {
  const env: AttemptEnvironment = {
    client: undefined as unknown as Client,
    serverSupportsTx: () => options.serverSupportsTx ?? true,
    serverDedupes: () => options.serverDedupes ?? options.serverSupportsTx ?? true,
    retryableErrors: DEFAULT_RETRYABLE_ERRORS,
    scheduler: options.scheduler,
    toolAnnotations: async () => options.annotations,
  };
  const request: TxRequest = {
    name: 'tool',
    args: {},
    requestId: uuidv7(),
    createdAtMs: 0,
    options: { timeoutMs: 30_000 },
    ...options.request,
  };
  const state = new TxCallState();
  return new TxCall(request, state, env, (subscriber) => {
    if (state.attempts === 0) {
      state.startedAtMs = options.scheduler.now();
      state.startedAt = new Date(state.startedAtMs).toISOString();
    }
    state.attempts += 1;
    return defer(() => attempt(state.attempts)).subscribe(subscriber);
  });
}
