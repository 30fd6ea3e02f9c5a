/**
 * Reliable MCP tool calls, the RxJS way: the client facade (`createMcpTx`), the call primitive,
 * errors, in-process stores, limiters and breakers, the server side (`txTool`), workflows and
 * sagas, and health; browser-safe. Redis-backed parts are in `mcp-tx/redis`, the HTTP gateway in
 * `mcp-tx/gateway`, the Node-only JSONL event store in `mcp-tx/node`.
 *
 * @module mcp-tx
 */

export type { TraceOptions } from '../operators/trace.js';
export {
  type Breaker,
  type BreakerPermit,
  type BreakerSnapshot,
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
  defaultIsFailure,
} from './breaker/circuitBreaker.js';
export {
  type AttemptEnvironment,
  type ConnectionGate,
  type RetryEvent,
  TxCall,
  TxCallState,
  withCallMeta,
} from './call/call.js';
export { extractData } from './call/result.js';
export { type TxOperator, txCallOf, txOperator } from './call/txOperator.js';
export { createMcpTx } from './client/client.js';
export type { McpTx } from './client/mcpTx.js';
export { type ToolPolicy, type TxCallOptions, type TxConfig, TxConfigSchema } from './client/options.js';
export {
  DEFAULT_RETRY_POLICY,
  DEFAULT_RETRYABLE_ERRORS,
  type Jitter,
  mergeRetry,
  type PartialRetryPolicy,
  type RetryLayer,
  type RetryPolicy,
  RetryPolicySchema,
  retryDelay,
} from './config/retryPolicy.js';
export { assertJsonArgs, assertToolName } from './config/toolInput.js';
export { parseOrThrow } from './config/validators.js';
export type { ConnectionState, ConnectionStatus } from './connection/connectionState.js';
export type { TransportFactory } from './connection/managedConnection.js';
export {
  DEFAULT_RECONNECT_POLICY,
  type ReconnectPolicy,
  ReconnectPolicySchema,
} from './connection/reconnectPolicy.js';
export { classifyRejection, classifyToolError, matchesRetryable } from './core/classify.js';
export {
  isTxError,
  statusOf,
  TxError,
  TxErrorCode,
  type TxErrorOptions,
  validationError,
} from './core/errors.js';
export type { MeterLike, TracerLike } from './core/otelTypes.js';
export { MAX_ERROR_MESSAGE_LENGTH, sanitizeMessage } from './core/sanitize.js';
export { parseWireTimestamp } from './core/time.js';
export type { JsonObject, TxAttemptOptions, TxMeta, TxRequest, TxResult, TxStatus } from './core/types.js';
export {
  advertisesMcpTx,
  advertisesMcpTxFeature,
  MCP_TX_DEDUPE_FEATURE,
  MCP_TX_VERSION,
  type McpTxCapability,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  serverDedupes,
  type WireRequestMeta,
  type WireResponseMeta,
} from './core/wire.js';
export {
  type EventFilter,
  type EventStore,
  MemoryEventStore,
  matchesFilter,
  type NewTxEvent,
  replayLog,
  type TxEvent,
  TxEventSchema,
} from './events/eventStore.js';
export {
  type ConnectionHealth,
  type DedupeWindowAlert,
  type HealthAlert,
  HealthMonitor,
  type HealthMonitorOptions,
  type HealthReport,
  type ToolAlert,
  type ToolHealth,
} from './health/healthMonitor.js';
export { canonicalJson, fingerprint, scopedKey } from './idempotency/fingerprint.js';
export {
  DEFAULT_MEMORY_STORE_MAX_BYTES,
  type MemoryIdempotencyStore,
  type MemoryStoreOptions,
  type MemoryStoreStats,
  memoryIdempotencyStore,
} from './idempotency/memoryStore.js';
export {
  type BeginOutcome,
  type Completion,
  type EffectStore,
  type IdempotencyRecord,
  type IdempotencyStore,
  type IdempotencyStoreStats,
  isEffectStore,
} from './idempotency/store.js';
export {
  ConcurrencyLimit,
  type ConcurrencyLimitOptions,
  concurrencyLimit,
} from './limiter/concurrencyLimit.js';
export type { Limiter, Permit } from './limiter/limiter.js';
export { TokenBucket, type TokenBucketOptions, tokenBucket } from './limiter/tokenBucket.js';
export { Saga, type SagaStep } from './orchestration/saga.js';
export type { SagaResult } from './orchestration/sagaHistory.js';
export {
  runWorkflow,
  type WorkflowDefinition,
  type WorkflowState,
  type WorkflowStep,
  type WorkflowStepRecord,
  workflow$,
} from './orchestration/workflow.js';
export { isResultWithEffect, type ResultWithEffect, withEffect } from './server/effect.js';
export { type TxToolRequest, txRequestOf } from './server/txRequest.js';
export { type TxToolOptions, txTool } from './server/txTool.js';
export type { ResumeOptions } from './tasks/taskClient.js';
export type { PendingTask, TaskEvent, TaskOnlyOptions } from './tasks/taskOptions.js';
export {
  type TaskHandler,
  type TaskHandlerExtra,
  type TaskToolOptions,
  taskTool,
} from './tasks/taskTool.js';
export { perRequestSignalFetch } from './transport/perRequestSignalFetch.js';
