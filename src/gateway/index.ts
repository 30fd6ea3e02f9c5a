export {
  type AuthHook,
  createGateway,
  type ErrorHook,
  type ExecuteToolResponse,
  type GatewayHealth,
  type GatewayOptions,
} from './gateway.js';
export { GatewayErrorCode, type GatewayMetadata, type ProblemDetails } from './problem.js';
export { type ServedGateway, type ServeGatewayOptions, serveGateway } from './serve.js';
