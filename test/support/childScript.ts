import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));
const folder = `${root}.tmp/children`;
/** Names this test run's bundles (set by the global setup below, so that each script is bundled once per run). */
const RUN_VARIABLE = 'MCP_TX_TEST_RUN';

/**
 * The `node` arguments that run one of the repository's TypeScript scripts in a child process:
 * one esbuild bundle of the script and everything it imports (`mcp-tx` through its `mcp-tx-source`
 * condition, npm packages included), built once per test run under `.tmp/children/` (two folders
 * below the root, like `src/cli/`, so package.json lookups resolve). A child started this way is
 * ready in ~0.3 s of CPU instead of ~1.3 s under `node --import tsx`, which transforms every source
 * file and resolves hundreds of modules on each start: that was most of the process tests' time.
 *
 * @example spawn(process.execPath, [...scriptArgs('test/support/stdioServer.ts'), '--flag'])
 */
export function scriptArgs(script: string): string[] {
  const path = fileURLToPath(new URL(script, `file://${root}`));
  const run = process.env[RUN_VARIABLE] ?? `pid${process.pid}`;
  const bundle = `${folder}/${run}__${relative(root, path).replaceAll('/', '__').replace(/\.ts$/, '.mjs')}`;
  if (!existsSync(bundle)) build(path, bundle);
  return [bundle];
}

/** `scriptArgs` as a shell command line (for `--stdio` options), the paths quoted. */
export function scriptCommand(script: string): string {
  return [process.execPath, ...scriptArgs(script)].map((part) => `'${part}'`).join(' ');
}

function build(path: string, outfile: string): void {
  const writing = `${outfile}.${process.pid}.tmp`;
  mkdirSync(folder, { recursive: true });
  buildSync({
    entryPoints: [path],
    outfile: writing,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['mcp-tx-source'],
    logLevel: 'error',
    banner: {
      js: `// bundled from ${basename(path)} for the tests\nimport { createRequire as createBundleRequire } from 'node:module';\nconst require = createBundleRequire(import.meta.url);`,
    },
  });
  renameSync(writing, outfile); // atomic: another worker may be running the same bundle
}

/**
 * vitest global setup (projects that start children): names this run's bundles, and deletes them
 * (and those of runs that were killed) when the run ends.
 */
export default function setup(): () => void {
  const run = `run${process.pid}`;
  process.env[RUN_VARIABLE] = run;
  return () => {
    for (const name of existsSync(folder) ? readdirSync(folder) : []) {
      if (name.startsWith(`${run}__`) || !isAlive(name)) rmSync(`${folder}/${name}`, { force: true });
    }
  };
}

/** Whether the process that named a bundle (`run<pid>__…` or `pid<pid>__…`) is still running. */
function isAlive(bundle: string): boolean {
  const pid = Number(/^(?:run|pid)(\d+)__/.exec(bundle)?.[1]);
  try {
    return Number.isInteger(pid) && process.kill(pid, 0);
  } catch {
    return false;
  }
}
