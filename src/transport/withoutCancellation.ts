import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/** Transports already filtered: filtering twice would only stack wrappers. */
const filtered = new WeakSet<object>();

function isCancellation(message: unknown): boolean {
  return (message as { method?: unknown } | null)?.method === 'notifications/cancelled';
}

/**
 * Makes `transport` drop every `notifications/cancelled` it is asked to send (in place: its `send`
 * is wrapped), and returns it. For servers that die on the notification (python-sdk 1.12.0, the
 * Python MCP-Tx 0.1.0 era): `createMcpTx` applies it with `sendCancellation: false`.
 *
 * Why at the transport: the SDK's `Protocol.request` has no way to give up a pending request
 * without the notification — a timeout and an abort both run its `cancel`, which forgets the
 * request (response and progress handlers, timer) and then sends `notifications/cancelled`. Letting
 * it do so and dropping the message keeps that bookkeeping: nothing of an abandoned request is left
 * behind, and a late answer finds no handler and is dropped (the SDK reports it to `onerror` as an
 * unknown message id). Anything else that is not a transport (no `send`) is returned as it is.
 *
 * @example
 * await client.connect(withoutCancellation(new StdioClientTransport({ command: 'python', args: ['server.py'] })));
 */
export function withoutCancellation<T>(transport: T): T {
  const target = transport as Partial<Transport> | null | undefined;
  if (typeof target?.send !== 'function' || filtered.has(target)) return transport;
  const send = target.send.bind(target);
  target.send = (message, options) => (isCancellation(message) ? Promise.resolve() : send(message, options));
  filtered.add(target);
  return transport;
}
