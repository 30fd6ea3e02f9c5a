import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Observable } from 'rxjs';
import { validationError } from '../core/errors.js';
import type { TxResult } from '../core/types.js';
import { TxCall } from './call.js';

/**
 * An MCP-Tx operator: takes a call and returns a call of the same request, so that the operators
 * further down the pipeline still know what they run. Every operator of `mcp-tx/operators` is one.
 *
 * @example
 * const resilient: TxOperator[] = [retryWithPolicy({ maxAttempts: 5 }), dedupe(store)];
 * const call = resilient.reduce((call, operator) => operator(call), tx.attempt$('charge', args));
 */
export type TxOperator<R = CallToolResult> = (source: Observable<TxResult<R>>) => TxCall<R>;

/**
 * The {@link TxCall} behind `source`, or a `MCP_TX_VALIDATION` error at assembly time naming the
 * operator, when something in the pipeline dropped the call's request.
 *
 * @example
 * const call = txCallOf(source, 'myOperator');
 * console.log(call.request.requestId);
 */
export function txCallOf<R>(source: Observable<TxResult<R>>, operatorName: string): TxCall<R> {
  if (source instanceof TxCall) return source;
  throw validationError(
    `${operatorName} source`,
    'must be a TxCall (from tx.attempt$ or tx.call$); an operator before it made a plain Observable — ' +
      'apply plain RxJS operators with .pipe() on the TxCall, or after the MCP-Tx operators',
  );
}

/**
 * Builds an MCP-Tx operator named `name`: `wrap` gets the {@link TxCall} behind the source and
 * returns what to run in its place — the call itself (a pass-through), `call.pipe(...)`, or any
 * Observable of results (`defer`, `new Observable`…), which becomes a call of the same request.
 * A source that is not a call fails at assembly with `MCP_TX_VALIDATION` naming the operator.
 *
 * @example
 * const logged = () =>
 *   txOperator('logged', (call) => call.pipe(tap(({ meta }) => console.log(call.request.name, meta.status))));
 * tx.attempt$('search', { q: 'rxjs' }).pipe(logged(), retryWithPolicy());
 */
export function txOperator<R = CallToolResult>(
  name: string,
  wrap: (call: TxCall<R>) => Observable<TxResult<R>>,
): TxOperator<R> {
  return (source) => {
    const call = txCallOf(source, name);
    const wrapped = wrap(call);
    if (wrapped instanceof TxCall && wrapped.request === call.request) return wrapped as TxCall<R>;
    return call.derive((subscriber) => wrapped.subscribe(subscriber));
  };
}
