/** `node:fs`'s `readFileSync` where the runtime has it, looked up at run time so that browser bundles import no Node built-in. */
const readFileSync = globalThis.process?.getBuiltinModule?.('node:fs')?.readFileSync;

let version: string | undefined;

/**
 * mcp-tx's own version, read once from its package.json: two folders up from this file in the
 * sources (src/client/), three in the build (dist/src/client/). `0.0.0` when neither is there, and
 * in a browser (no file system).
 */
export function mcpTxVersion(): string {
  version ??=
    ['../../package.json', '../../../package.json']
      .map((path) => readManifest(new URL(path, import.meta.url)))
      .find((manifest) => manifest?.name === 'mcp-tx')?.version ?? '0.0.0';
  return version;
}

function readManifest(url: URL): { name?: string; version?: string } | undefined {
  if (readFileSync === undefined) return undefined;
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
  } catch {
    return undefined;
  }
}

/** The `clientInfo` of a client mcp-tx makes when the config names none: `mcp-tx` and its version. */
export function defaultClientInfo(): { name: string; version: string } {
  return { name: 'mcp-tx', version: mcpTxVersion() };
}
