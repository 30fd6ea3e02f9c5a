/**
 * The browser entries (`mcp-tx`, `mcp-tx/operators`) bundle for the browser platform without a
 * single Node built-in, and tree-shaking keeps an app that uses `tx.call$` free of the Node-only,
 * Redis and gateway code.
 */
import { describe, expect, it } from 'vitest';
import { ALL_BROWSER_ENTRIES, CALL_APP, OPERATORS_APP } from './apps.js';
import { bundleForBrowser } from './bundle.js';

/** Modules no browser app of mcp-tx may pull in. */
const NODE_ONLY =
  /src\/(gateway|cli)\/|src\/node\.ts|jsonlEventStore|redis|node_modules\/(hono|@hono|ioredis|commander|cli-progress|@opentelemetry)\//i;

describe('mcp-tx in a browser bundle', () => {
  it('imports no Node built-in from mcp-tx and mcp-tx/operators', async () => {
    const { nodeImports, inputs } = await bundleForBrowser(ALL_BROWSER_ENTRIES);
    expect(nodeImports).toEqual([]);
    expect(inputs.filter((input) => NODE_ONLY.test(input))).toEqual([]);
  });

  it('tells a Node built-in when an entry has one (mcp-tx/node: the JSONL store)', async () => {
    const { nodeImports } = await bundleForBrowser("export * from 'mcp-tx/node';");
    expect(nodeImports).toContain('src/events/jsonlEventStore.ts → node:fs/promises');
  });

  it.each([
    ['tx.call$ only', CALL_APP],
    ['the operators by hand', OPERATORS_APP],
  ])('leaves the Node-only, Redis and gateway code out of an app using %s', async (_name, app) => {
    const { nodeImports, inputs } = await bundleForBrowser(app);
    expect(nodeImports).toEqual([]);
    expect(inputs.filter((input) => NODE_ONLY.test(input))).toEqual([]);
  });
});
