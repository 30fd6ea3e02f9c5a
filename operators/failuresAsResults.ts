import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { catchError, of, throwError } from 'rxjs';
import { withCallMeta } from '../src/call/call.js';
import { buildResult } from '../src/call/result.js';
import { type TxOperator, txOperator } from '../src/call/txOperator.js';
import { TxError } from '../src/core/errors.js';
import type { TxMeta, TxResult } from '../src/core/types.js';

/**
 * Turns a final failure into a value, as the Python MCP-Tx returns failures: a {@link TxResult}
 * with `meta.ack: false`, `processed: false`, the status, `errorCode` and `errorMessage`, and an
 * `isError` result carrying the message. Errors that are not {@link TxError}s (bugs) still error.
 * Put it last, after the operators whose failures it should report.
 *
 * @example
 * const { meta } = await lastValueFrom(tx.call$('charge', { cents: 500 }).pipe(failuresAsResults()));
 * if (!meta.ack) console.log(meta.status, meta.errorCode, meta.errorMessage);
 */
export function failuresAsResults(): TxOperator {
  return txOperator('failuresAsResults', (call) => {
    return call.pipe(
      catchError((error: unknown) => {
        if (!(error instanceof TxError)) return throwError(() => error);
        const meta = (withCallMeta(call, error) as TxError).meta as TxMeta;
        const result: CallToolResult = { content: [{ type: 'text', text: error.message }], isError: true };
        return of(buildResult(result, undefined, Object.freeze({ ...meta, ack: false, processed: false })));
      }),
    );
  });
}
