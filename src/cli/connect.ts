import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { filter, firstValueFrom, fromEvent, NEVER, type Subscription, takeUntil } from 'rxjs';
import { createMcpTx } from '../client/client.js';
import type { McpTx } from '../client/mcpTx.js';
import type { TxConfig } from '../client/options.js';
import { isTxError, TxError, TxErrorCode } from '../core/errors.js';
import { sanitizeMessage } from '../core/sanitize.js';
import { perRequestSignalFetch } from '../transport/perRequestSignalFetch.js';
import { CliError, ExitCode, errorText } from './io.js';

/** The server to call: a command to start (its stdio is the MCP connection) or a Streamable HTTP URL. */
export type ServerTarget = { readonly stdio: string } | { readonly url: string };

/** How much of a stdio server's stderr is kept to explain a failed start. */
const STDERR_TAIL_CHARS = 2_000;

/** How long to wait for the server to initialize, and a signal that gives up at once (Ctrl-C). */
export interface ConnectOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A server as `createMcpTx` connects to it: `connect` makes a new transport for each connection
 * (a new child process for a stdio command, a new session for a URL), so that mcp-tx can connect
 * again after the server went away; `explain` puts a failed connection in words.
 */
export interface ServerConnection {
  /** The server as the messages name it: `--stdio "…"`, `--url …` (secrets redacted, with {@link sanitizeMessage}). */
  readonly described: string;
  /** Transports made so far (the number of the last connection). */
  readonly connections: number;
  /** A new transport to the server. */
  connect(): Transport;
  /** Why a connection failed: for a stdio server, with the end of what it printed on stderr. */
  explain(error: unknown): string;
  /** Closes the last transport made (a stdio server is stopped). */
  close(): Promise<void>;
}

/**
 * The connection to `target`: a `--stdio` command is split with {@link splitCommand} and started
 * directly (no shell: use `sh -c '…'` for pipes or variables), with this process's environment;
 * a `--url` gets a new Streamable HTTP session each time.
 *
 * @example
 * const tx = await openMcpTx(serverConnection({ stdio: 'node server.js' }), {}, { timeoutMs: 10_000 });
 */
export function serverConnection(target: ServerTarget): ServerConnection {
  if ('stdio' in target) {
    const { command, args } = splitCommand(target.stdio);
    return stdioConnection(command, () => args, `--stdio "${sanitizeMessage(target.stdio)}"`);
  }
  const url = new URL(target.url);
  const described = `--url ${sanitizeMessage(target.url)}`;
  let connections = 0;
  let last: Transport | undefined;
  return {
    described,
    get connections() {
      return connections;
    },
    connect() {
      connections += 1;
      last = new StreamableHTTPClientTransport(url, { fetch: perRequestSignalFetch() });
      return last;
    },
    explain: (error) => `cannot connect to ${described}: ${causeText(error)}`,
    close: async () => {
      await last?.close().catch(() => undefined);
    },
  };
}

/**
 * Starts `command` with the `args` of each connection (1 for the first; this process's
 * environment, no shell) and speaks to it over stdio; a connection lost (the server exited) starts
 * it again. `explain` names the server as `described` (already sanitized) and quotes the end of the
 * last one's stderr, with its secrets redacted.
 *
 * @example
 * const server = stdioConnection(process.execPath, () => ['server.js'], 'the demo server');
 */
export function stdioConnection(
  command: string,
  args: (connection: number) => readonly string[],
  described: string,
): ServerConnection {
  let connections = 0;
  let last: StdioClientTransport | undefined;
  let stderrTail = '';
  return {
    described,
    get connections() {
      return connections;
    },
    connect() {
      connections += 1;
      const transport = new StdioClientTransport({
        command,
        args: [...args(connections)],
        env: inheritedEnv(),
        stderr: 'pipe',
      });
      stderrTail = '';
      transport.stderr?.on('data', (chunk: Buffer) => {
        if (transport === last) stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
      });
      last = transport;
      return transport;
    },
    explain(error) {
      const said = sanitizeMessage(stderrTail.trim(), STDERR_TAIL_CHARS);
      return `cannot start ${described}${said === '' ? '' : ` (its stderr: ${said})`}: ${causeText(error)}`;
    },
    close: async () => {
      await last?.close().catch(() => undefined);
    },
  };
}

/** How the command line reconnects: at once, then backing off to 5 s; it gives up after 8 attempts in a row. */
const RECONNECT = { baseDelayMs: 100, maxDelayMs: 5_000, maxAttempts: 8 } as const;

/**
 * An McpTx on `server` (the factory form: mcp-tx owns the client and connects it again when the
 * server goes away; `config.reconnect` over the command line's backoff), once its first connection
 * is made within `timeoutMs`. When the first connection fails, throws a {@link CliError} saying why
 * ({@link ServerConnection.explain}): a server that never started is not waited for. When `signal`
 * aborts first, throws one with exit code 130 (interrupted). Either way the server is stopped.
 *
 * @example
 * const tx = await openMcpTx(serverConnection(target), { timeoutMs: 30_000 }, { timeoutMs: 30_000, signal });
 */
export async function openMcpTx(
  server: ServerConnection,
  config: TxConfig,
  { timeoutMs, signal }: ConnectOptions,
): Promise<McpTx> {
  const tx = createMcpTx(() => server.connect(), {
    clientInfo: CLIENT_INFO,
    ...config,
    reconnect:
      config.reconnect === false ? false : { ...RECONNECT, connectTimeoutMs: timeoutMs, ...config.reconnect },
  });
  try {
    await firstConnection(tx, signal);
    return tx;
  } catch (error) {
    await closeWithin(tx, 1_000); // stops connecting, and closes the transport
    await server.close(); // in case closing took longer
    if (signal?.aborted)
      throw new CliError(`interrupted while connecting to ${server.described}`, ExitCode.Interrupted);
    const timedOut = isTxError(error, TxErrorCode.Timeout);
    throw new CliError(server.explain(timedOut ? new Error(`no answer within ${timeoutMs} ms`) : error));
  }
}

const CLIENT_INFO = { name: 'mcp-tx-cli', version: '1.0.0' };

/**
 * Resolves once `tx` is connected for the first time; rejects with the error of the first failed
 * attempt (the command line does not retry a server that never started), or when `signal` aborts.
 */
async function firstConnection(tx: McpTx, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) throw signal.reason;
  const settled = await firstValueFrom(
    tx.connection$.pipe(
      filter(({ state, error }) => state === 'connected' || state === 'closed' || error !== undefined),
      takeUntil(signal === undefined ? NEVER : fromEvent(signal, 'abort')),
    ),
    { defaultValue: undefined },
  );
  if (settled === undefined) throw signal?.reason;
  if (settled.state !== 'connected') throw settled.error ?? new Error('the connection was closed');
}

/** Closes `tx`, waiting at most `ms` (a connection attempt under way must not hold up Ctrl-C). */
async function closeWithin(tx: McpTx, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    tx.close({ timeoutMs: 0 }).catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** What the error under mcp-tx's own (the transport's, the SDK's) said, its secrets redacted. */
function causeText(error: unknown): string {
  let current = error;
  while (current instanceof TxError && current.cause !== undefined) current = current.cause;
  return sanitizeMessage(errorText(current));
}

/**
 * Splits a command line into a command and its arguments: words are separated by spaces; '…'
 * quotes literally, "…" quotes with \" and \\ escapes, and \ outside quotes escapes the next
 * character. No shell expansion. Throws an Error saying why on an unclosed quote or no command.
 *
 * @example
 * splitCommand(`node "my server.js" --name 'a b'`); // { command: 'node', args: ['my server.js', '--name', 'a b'] }
 */
export function splitCommand(line: string): { command: string; args: string[] } {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let index = 0; index < line.length; index++) {
    const char = line[index] as string;
    const next = line[index + 1];
    if (quote === undefined && /\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (quote === undefined && (char === "'" || char === '"')) quote = char;
    else if (char === quote) quote = undefined;
    else if (
      char === '\\' &&
      next !== undefined &&
      (quote === undefined || (quote === '"' && (next === '"' || next === '\\')))
    ) {
      word += next;
      index += 1;
    } else word += char;
  }
  if (quote !== undefined) throw new Error(`unclosed ${quote} quote`);
  if (inWord) words.push(word);
  const [command, ...args] = words;
  if (command === undefined) throw new Error('must name a command');
  return { command, args };
}

function inheritedEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/**
 * Tells `say` when `tx` loses its connection to `server` after the first one, when it is connected
 * again (and how long that took), and when it gives up. Unsubscribe before closing `tx`.
 *
 * @example
 * const watching = watchConnection(tx, server, (text) => io.stderr(`mcp-tx: ${text}\n`));
 * watching.unsubscribe();
 */
export function watchConnection(
  tx: McpTx,
  server: ServerConnection,
  say: (text: string) => void,
): Subscription {
  let lostAt: number | undefined;
  let connected = false;
  return tx.connection$.subscribe(({ state, error }) => {
    const why = error === undefined ? '' : `: ${causeText(error)}`;
    if (state === 'connected') {
      if (lostAt !== undefined) say(`reconnected to ${server.described} in ${Date.now() - lostAt} ms`);
      connected = true;
      lostAt = undefined;
    } else if (state === 'reconnecting' && connected && lostAt === undefined) {
      lostAt = Date.now();
      say(`lost the connection to ${server.described}${why}; reconnecting`);
    } else if (state === 'closed' && connected) {
      say(`gave up reconnecting to ${server.described}${why}`);
    }
  });
}
