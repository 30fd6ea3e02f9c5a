import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

/**
 * `mcp-tx` and its subpaths resolved to their TypeScript sources, as the `mcp-tx-source` condition of
 * the package's own exports says (examples and tests import the package by name).
 */
const { exports } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, string | { 'mcp-tx-source'?: string }>;
};
const sourceAliases = Object.entries(exports).flatMap(([subpath, target]) =>
  typeof target === 'object' && target['mcp-tx-source'] !== undefined
    ? [
        {
          find: new RegExp(`^${subpath.replace(/^\./, 'mcp-tx')}$`),
          replacement: new URL(target['mcp-tx-source'], import.meta.url).pathname,
        },
      ]
    : [],
);

/** One project per kind of test, so that each can run alone (`npm run test:unit`, `test:package`). */
const project = (
  name: string,
  include: string[],
  extra: {
    globalSetup?: string[];
    isolate?: boolean;
    maxWorkers?: number;
    sequence?: { groupOrder: number };
  } = {},
) => ({
  extends: true as const,
  test: { name, include, ...extra },
});

export default defineConfig({
  resolve: { alias: sourceAliases },
  test: {
    exclude: ['dist/**', 'node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 20_000,
    reporters: ['default', './test/support/summaryReporter.ts'],
    projects: [
      // In-process: the real SDK over InMemoryTransport or loopback HTTP, and virtual time. No Redis, no child process.
      project('unit', ['test/unit/**/*.test.ts'], {
        isolate: false,
        maxWorkers: 4,
        sequence: { groupOrder: 1 },
      }),
      // Redis and unit tests run after the e2e ones, 4 files at a time: the Redis tests mostly wait
      // (outages, timeouts, leases), and the unit tests use the cores they leave idle.
      project('redis', ['test/redis/**/*.test.ts'], {
        globalSetup: ['./test/support/redisSetup.ts', './test/support/childScript.ts'],
        isolate: false,
        maxWorkers: 4,
        sequence: { groupOrder: 1 },
      }),
      // Child processes: stdio servers, the CLI binary, crashes.
      project('e2e', ['test/e2e/**/*.test.ts', 'test/chaos/**/*.test.ts'], {
        globalSetup: ['./test/support/childScript.ts'],
        isolate: false,
      }),
      // The packed tarball and a git install in fresh projects (npm install: slow, run by CI on its own).
      project('package', ['test/package/**/*.test.ts']),
      // Browser bundles (esbuild) and the example page in headless Chromium (`npm run test:browser`).
      project('browser', ['test/browser/**/*.test.ts']),
    ],
  },
});
