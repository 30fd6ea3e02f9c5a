import { defineConfig } from 'vite';

/**
 * The example page: `mcp-tx` resolved to its TypeScript sources (the package's `mcp-tx-source`
 * condition), as the other examples do; a user's app resolves the published build instead.
 */
export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  resolve: { conditions: ['mcp-tx-source', 'browser', 'module', 'import', 'default'] },
  build: { target: 'es2022' },
});
