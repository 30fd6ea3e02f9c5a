/**
 * The HTTP gateway: `POST /execute-tool` and `GET /health` in front of one `McpTx`, built with Hono
 * and served with `@hono/node-server`.
 *
 * @module mcp-tx/gateway
 */
export { type AuthHook, createGateway, type ErrorHook, type GatewayOptions } from './app.js';
export { type BearerAuthOptions, bearerAuth, MIN_BEARER_TOKEN_LENGTH } from './bearerAuth.js';
export type { ExecuteToolResponse } from './executeTool.js';
export type { GatewayConnection, GatewayHealth } from './health.js';
export { GatewayErrorCode, type GatewayMetadata, type ProblemDetails } from './problem.js';
export { type ServedGateway, type ServeGatewayOptions, serveGateway } from './serve.js';
