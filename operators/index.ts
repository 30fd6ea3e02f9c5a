/**
 * The reliability operators, one per file, each `(source: TxCall) => TxCall`: `retryWithPolicy`,
 * `throttle`, `circuitBreak`, `dedupe`, `trace`, `record`, `monitor`, `failuresAsResults`.
 *
 * @module mcp-tx/operators
 */
export { circuitBreak } from './circuitBreak.js';
export { type DedupeOptions, dedupe } from './dedupe.js';
export { failuresAsResults } from './failuresAsResults.js';
export { monitor } from './monitor.js';
export { type RecordOptions, record } from './record.js';
export { type RetryOptions, retryWithPolicy } from './retryWithPolicy.js';
export { throttle } from './throttle.js';
export { type TraceOptions, trace } from './trace.js';
