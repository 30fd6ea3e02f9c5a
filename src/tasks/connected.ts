import type { AttemptEnvironment } from '../call/call.js';

/**
 * Resolves once the connection mcp-tx keeps for `env` is up (at once when it is, or when the user
 * connected the client); rejects with the error that ends the wait (`timeoutMs` passed, or closed).
 *
 * @example
 * await connectedWithin(env, 30_000);
 * await env.client.experimental.tasks.getTask(taskId);
 */
export function connectedWithin(env: AttemptEnvironment, timeoutMs: number): Promise<void> {
  const gate = env.connection;
  if (gate === undefined || gate.connected) return Promise.resolve();
  return new Promise((resolve, reject) =>
    gate.whenConnected(timeoutMs, (error) => (error === undefined ? resolve() : reject(error))),
  );
}
