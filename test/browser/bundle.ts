/**
 * Bundles an entry source for the browser with esbuild, as an app's bundler would, resolving
 * `mcp-tx` to its TypeScript sources: the minified and gzipped sizes, the modules it pulled in, and
 * every import of a Node built-in it met (each one would break the bundle in a page).
 */
import { builtinModules } from 'node:module';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';

const ROOT = new URL('../..', import.meta.url).pathname;
const BUILTINS = new Set(builtinModules);

/** What a browser bundle holds. */
export interface BrowserBundle {
  readonly bytes: number;
  readonly gzipBytes: number;
  /** The source files bundled, relative to the repository. */
  readonly inputs: readonly string[];
  /** `importer → specifier` for every import of a Node built-in. */
  readonly nodeImports: readonly string[];
}

const isBuiltin = (specifier: string) =>
  specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0] ?? '');

/** Records every Node built-in imported and leaves it out (so that the bundle completes and lists them all). */
function nodeImportRecorder(found: string[]): Plugin {
  return {
    name: 'node-imports',
    setup(bundle) {
      bundle.onResolve({ filter: /.*/ }, ({ path, importer }) => {
        if (!isBuiltin(path)) return undefined;
        found.push(`${importer.replace(ROOT, '')} → ${path}`);
        return { path, external: true };
      });
    },
  };
}

/**
 * `source` (TypeScript, resolved from the repository root) bundled for the browser platform,
 * minified, tree-shaken.
 *
 * @example
 * const { gzipBytes, nodeImports } = await bundleForBrowser("export * from 'mcp-tx';");
 */
export async function bundleForBrowser(source: string): Promise<BrowserBundle> {
  const nodeImports: string[] = [];
  const result = await build({
    stdin: { contents: source, resolveDir: ROOT, loader: 'ts', sourcefile: 'app.ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    conditions: ['mcp-tx-source'],
    plugins: [nodeImportRecorder(nodeImports)],
  });
  const code = result.outputFiles[0]?.contents ?? new Uint8Array();
  return {
    bytes: code.byteLength,
    gzipBytes: gzipSync(code, { level: 9 }).byteLength,
    inputs: Object.keys(result.metafile.inputs),
    nodeImports,
  };
}
