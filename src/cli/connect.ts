import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { sanitizeMessage } from '../core/sanitize.js';
import { mcpTxClientCapabilities } from '../core/wire.js';
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
 * Connects an SDK client that advertises MCP-Tx to `target`, waiting at most `timeoutMs` for the
 * server to initialize. A `--stdio` command is split with {@link splitCommand} and started directly
 * (no shell: use `sh -c '…'` for pipes or variables), with this process's environment. Throws a
 * {@link CliError} naming the flag when the server cannot be reached (secrets in a URL redacted),
 * or one with exit code 130 (interrupted) when `signal` aborts first.
 *
 * @example
 * const client = await connectServer({ stdio: 'node server.js --port 0' }, { timeoutMs: 10_000 });
 */
export async function connectServer(target: ServerTarget, options: ConnectOptions): Promise<Client> {
  if ('stdio' in target) {
    const { command, args } = splitCommand(target.stdio);
    return connectStdio(command, args, `--stdio "${target.stdio}"`, options);
  }
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(new URL(target.url), {
    fetch: perRequestSignalFetch(),
  });
  const described = `--url ${sanitizeMessage(target.url)}`;
  await connectOrExplain(
    client,
    transport,
    described,
    options,
    (error) => `cannot connect to ${described}: ${sanitizeMessage(errorText(error))}`,
  );
  return client;
}

/**
 * Starts `command` with `args` (this process's environment, no shell) and connects to it over
 * stdio. Throws a {@link CliError} that names the server as `described` and quotes the end of its
 * stderr when it cannot be started or does not initialize within `timeoutMs`; one with exit code
 * 130 (interrupted) when `signal` aborts first. Either way the server is stopped.
 *
 * @example
 * const client = await connectStdio(process.execPath, ['server.js'], 'the demo server', { timeoutMs: 10_000 });
 */
export async function connectStdio(
  command: string,
  args: readonly string[],
  described: string,
  options: ConnectOptions,
): Promise<Client> {
  const client = newClient();
  const transport = new StdioClientTransport({
    command,
    args: [...args],
    env: inheritedEnv(),
    stderr: 'pipe',
  });
  let stderrTail = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
  });
  await connectOrExplain(client, transport, described, options, (error) => {
    const said = stderrTail.trim();
    return `cannot start ${described}${said === '' ? '' : ` (its stderr: ${said})`}: ${errorText(error)}`;
  });
  return client;
}

function newClient(): Client {
  return new Client({ name: 'mcp-tx-cli', version: '1.0.0' }, { capabilities: mcpTxClientCapabilities() });
}

/** Connects, or closes the transport and throws: interrupted if `signal` aborted, else what `explain` says. */
async function connectOrExplain(
  client: Client,
  transport: Transport,
  described: string,
  { timeoutMs, signal }: ConnectOptions,
  explain: (error: unknown) => string,
): Promise<void> {
  try {
    await client.connect(transport, { timeout: timeoutMs, signal });
  } catch (error) {
    await transport.close().catch(() => undefined);
    if (signal?.aborted)
      throw new CliError(`interrupted while connecting to ${described}`, ExitCode.Interrupted);
    throw new CliError(explain(error));
  }
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
