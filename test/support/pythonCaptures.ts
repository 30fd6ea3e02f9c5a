/**
 * The wire captures with the Python MCP-Tx 0.1.0 (`../shared/interop/python-mcp-tx-0.1.0/`, beside
 * the repository: CI has a read-only copy there), read as golden inputs.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The directory of the captures: `../shared/interop/python-mcp-tx-0.1.0/` from the repository root. */
export const CAPTURES_DIR = fileURLToPath(
  new URL('../../../shared/interop/python-mcp-tx-0.1.0/', import.meta.url),
);

/** One line of a capture: which way it went, when (epoch seconds), and the JSON-RPC message as sent. */
export interface CapturedLine {
  readonly dir: 'client->server' | 'server->client';
  readonly t: number;
  /** The JSON-RPC message exactly as it was sent (no newline). */
  readonly line: string;
  /** `line`, parsed. */
  readonly message: CapturedMessage;
}

/** A JSON-RPC message of a capture, loosely typed. */
export interface CapturedMessage {
  readonly id?: number | string;
  readonly method?: string;
  readonly params?: {
    readonly name?: string;
    readonly arguments?: Record<string, unknown>;
    readonly _meta?: { readonly mcp_tx?: Record<string, unknown> };
    readonly capabilities?: { readonly experimental?: Record<string, unknown> };
  };
  readonly result?: {
    readonly content?: readonly { readonly type: string; readonly text?: string }[];
    readonly isError?: boolean;
    readonly _meta?: { readonly mcp_tx?: Record<string, unknown> };
    readonly capabilities?: { readonly experimental?: Record<string, unknown> };
  };
  readonly error?: unknown;
}

/**
 * The lines of the capture `name` (e.g. `python-client-to-ts-server.jsonl`), in order. Fails, naming
 * the path, when the captures are not there.
 */
export function readCapture(name: string): CapturedLine[] {
  const path = `${CAPTURES_DIR}${name}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read the capture ${path} (the shared/ directory beside the repository): ${error}`,
    );
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((raw) => {
      const parsed = JSON.parse(raw) as Omit<CapturedLine, 'message'>;
      return { ...parsed, message: JSON.parse(parsed.line) as CapturedMessage };
    });
}
