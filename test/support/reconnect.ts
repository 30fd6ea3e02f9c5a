import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/** Keeps `client` connected: each time its transport closes, connects a new one from `open`. */
export interface Reconnector {
  /** Connections made so far, the first included. */
  readonly connections: number;
  /** Stops reconnecting (then close the client, or the McpTx on it). */
  stop(): void;
}

/**
 * Connects `client` with `open()` and reconnects it whenever the connection drops (a server
 * restart, an injected disconnect), until `stop()`. `onClosed` hears each closed transport.
 */
export async function keepConnected(
  client: Client,
  open: () => Promise<Transport>,
  onClosed: (transport: Transport) => void = () => undefined,
): Promise<Reconnector> {
  let connections = 0;
  let stopped = false;
  const connect = async (): Promise<void> => {
    connections += 1;
    const transport = await open();
    await client.connect(transport);
    const protocolOnClose = transport.onclose;
    let closed = false;
    transport.onclose = () => {
      protocolOnClose?.();
      if (closed) return;
      closed = true;
      onClosed(transport);
      if (!stopped) connect().catch((error: unknown) => client.onerror?.(error as Error));
    };
  };
  await connect();
  return {
    get connections() {
      return connections;
    },
    stop() {
      stopped = true;
    },
  };
}
