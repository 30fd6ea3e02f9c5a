import type { McpTx } from '../client/mcpTx.js';
import { isTxError, TxError, TxErrorCode } from '../core/errors.js';
import type { TxResult } from '../core/types.js';
import { scopedKey } from '../idempotency/fingerprint.js';
import { type GatewayMetadata, gatewayMetadata } from './problem.js';
import { callOptionsOf, type ExecuteToolRequest } from './request.js';

/**
 * What `POST /execute-tool` answers, 200: the tool's result (its `data`), or the error it reported
 * (`success: false`). Other failures answer a {@link ProblemDetails}.
 *
 * @example
 * const body = JSON.stringify({ tool_name: 'get_stock', arguments: { item: 'fig' } });
 * const response = await fetch(`${url}/execute-tool`, { method: 'POST', body });
 * const answer = (await response.json()) as ExecuteToolResponse;
 * if (answer.success) console.log(answer.result, answer.metadata.attempts);
 */
export type ExecuteToolResponse =
  | { readonly success: true; readonly result: unknown; readonly metadata: GatewayMetadata }
  | {
      readonly success: false;
      readonly result: null;
      readonly error: { readonly code: string; readonly message: string };
      readonly metadata?: GatewayMetadata;
    };

/**
 * Runs an execute-tool request as a `tx.call`, to what it answers; rejects with any failure but a
 * tool error (a {@link TxError}, answered as a problem).
 *
 * @example
 * const execute: ExecuteTool = toolExecutor(tx, { waitForInFlight: true });
 * return c.json(await execute(await readExecuteToolRequest(c)));
 */
export type ExecuteTool = (request: ExecuteToolRequest) => Promise<ExecuteToolResponse>;

type CallTool = (request: ExecuteToolRequest) => Promise<TxResult>;

/**
 * Runs requests through `tx.call` with its default pipeline (retry, dedupe, …). A keyed request
 * while a call with the same tool and key is in flight through this executor joins it
 * (`waitForInFlight`, by the McpTx's dedupe) or is refused 409 `MCP_TX_IN_PROGRESS`.
 *
 * @example
 * const execute = toolExecutor(tx, { waitForInFlight: false });
 * await execute({ tool_name: 'charge', arguments: { cents: 500 }, idempotency_key: 'order-42' });
 */
export function toolExecutor(tx: McpTx, { waitForInFlight }: { waitForInFlight: boolean }): ExecuteTool {
  const call = waitForInFlight ? callThrough(tx) : refuseInFlight(callThrough(tx));
  return (request) => answer(call, request);
}

function callThrough(tx: McpTx): CallTool {
  return (request) => tx.call(request.tool_name, request.arguments, callOptionsOf(request));
}

/** Refuses (409) a keyed request while a call with the same tool and key is in flight through `call`. */
function refuseInFlight(call: CallTool): CallTool {
  const inFlight = new Set<string>();
  return async (request) => {
    if (request.idempotency_key === undefined) return call(request);
    const key = scopedKey(request.tool_name, request.idempotency_key);
    if (inFlight.has(key)) {
      throw new TxError(
        TxErrorCode.InProgress,
        `A call of ${request.tool_name} with idempotency key "${request.idempotency_key}" is in progress; retry later`,
        { retryable: true, field: 'idempotency_key' },
      );
    }
    inFlight.add(key);
    try {
      return await call(request);
    } finally {
      inFlight.delete(key);
    }
  };
}

/** Runs the call; a tool that answered with an error is a 200 `success: false`, any other failure a problem. */
async function answer(call: CallTool, request: ExecuteToolRequest): Promise<ExecuteToolResponse> {
  try {
    const { data, meta } = await call(request);
    return { success: true, result: data, metadata: gatewayMetadata(meta) };
  } catch (error) {
    if (!isTxError(error, TxErrorCode.ToolError)) throw error;
    return {
      success: false,
      result: null,
      error: { code: error.code, message: error.message },
      ...(error.meta === undefined ? {} : { metadata: gatewayMetadata(error.meta) }),
    };
  }
}
