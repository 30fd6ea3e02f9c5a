/**
 * What mcp-tx adds to a browser bundle: the same type-ahead app with the bare SDK client, with
 * `tx.call$` only, and with the operators composed by hand, bundled for the browser (minified,
 * tree-shaken, gzip -9) by Vite (Rolldown) and by esbuild; mcp-tx's share is the difference to the
 * bare app (rxjs and the SDK's `Client` + `StreamableHTTPClientTransport` are in every one).
 * Run: `npm run bench -- bundleSize`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { version as esbuildVersion } from 'esbuild';
import { build, version as viteVersion } from 'vite';
import { ALL_BROWSER_ENTRIES, BARE_SDK_APP, CALL_APP, OPERATORS_APP } from '../test/browser/apps.js';
import { bundleForBrowser } from '../test/browser/bundle.js';
import { machineLine, writeResults } from './harness.js';

/** Inside the repository (gitignored), so that Vite resolves `mcp-tx` to this package. */
const SCRATCH = new URL('../.tmp/bundleSize/', import.meta.url);

/** Gzipped bytes of `source` built by Vite for production. */
async function viteGzipBytes(name: string, source: string): Promise<number> {
  mkdirSync(SCRATCH, { recursive: true });
  const input = new URL(`${name}.js`, SCRATCH).pathname;
  writeFileSync(input, source);
  const result = await build({
    configFile: false,
    logLevel: 'silent',
    resolve: { conditions: ['mcp-tx-source', 'browser', 'module', 'import', 'default'] },
    build: {
      write: false,
      target: 'es2022',
      minify: true,
      rollupOptions: { input, preserveEntrySignatures: 'strict' },
    },
  });
  const [{ output }] = (Array.isArray(result) ? result : [result]) as [
    { output: Array<{ type: string; code?: string }> },
  ];
  const code = output.map((chunk) => (chunk.type === 'chunk' ? (chunk.code ?? '') : '')).join('');
  return gzipSync(code, { level: 9 }).byteLength;
}

const kib = (bytes: number) => (bytes / 1024).toFixed(1);
const apps = [
  ['bare', 'rxjs + SDK client, `client.callTool` in `switchMap` (baseline)', BARE_SDK_APP],
  ['call', '`createMcpTx(connect)` + `tx.call$` in `switchMap`', CALL_APP],
  ['operators', '`tx.attempt$` + throttle, circuitBreak, retryWithPolicy, dedupe', OPERATORS_APP],
  ['all', 'all of `mcp-tx` and `mcp-tx/operators` (`export *`)', `${ALL_BROWSER_ENTRIES}\n${BARE_SDK_APP}`],
] as const;

const sizes: Array<{ label: string; vite: number; esbuild: number }> = [];
for (const [name, label, source] of apps) {
  sizes.push({
    label,
    vite: await viteGzipBytes(name, source),
    esbuild: (await bundleForBrowser(source)).gzipBytes,
  });
}
const [bare] = sizes as [(typeof sizes)[number]];
const added = (bytes: number, base: number) => (bytes === base ? '–' : `+${kib(bytes - base)}`);

writeResults(
  'bundleSize',
  [
    `A type-ahead app bundled for the browser (ESM, minified, tree-shaken; gzip -9) by Vite ${viteVersion} and by esbuild ${esbuildVersion} (platform browser), mcp-tx from its sources; KiB. mcp-tx's share is the difference to the same app on the bare SDK client: rxjs, the SDK's \`Client\` + \`StreamableHTTPClientTransport\` and zod are in every row. mcp-tx imports zod as \`import * as z from 'zod'\`, which esbuild shakes (it keeps every zod locale after \`import { z } from 'zod'\`). ${machineLine()}.`,
    '',
    '| app | Vite gzip | mcp-tx adds | esbuild gzip | mcp-tx adds |',
    '|---|---:|---:|---:|---:|',
    ...sizes.map(
      ({ label, vite, esbuild }) =>
        `| ${label} | ${kib(vite)} | ${added(vite, bare.vite)} | ${kib(esbuild)} | ${added(esbuild, bare.esbuild)} |`,
    ),
  ].join('\n'),
);
