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

export default defineConfig({
  resolve: { alias: sourceAliases },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 20_000,
    reporters: ['default', './test/support/summaryReporter.ts'],
    globalSetup: ['./test/support/redisSetup.ts'],
  },
});
