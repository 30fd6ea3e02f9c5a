import { describe, expect, it } from 'vitest';
import {
  advertisesMcpTx,
  advertisesMcpTxFeature,
  MCP_TX_DEDUPE_FEATURE,
  mcpTxClientCapabilities,
  mcpTxServerCapabilities,
  serverDedupes,
} from '../../../src/core/wire.js';
import { readCapture } from '../../support/pythonCaptures.js';

/** The capabilities of a capture's `initialize` (the client's) or of its answer (the server's). */
function capturedCapabilities(name: string, dir: 'client->server' | 'server->client') {
  const { message } = readCapture(name).find((line) => line.dir === dir && line.message.id === 0) ?? {};
  const capabilities =
    dir === 'client->server' ? message?.params?.capabilities : message?.result?.capabilities;
  if (capabilities === undefined) throw new Error(`${name}: no initialize ${dir}`);
  return capabilities;
}

const PYTHON_FEATURES = ['ack', 'retry', 'idempotency', 'transactions'];

describe('MCP-Tx capabilities', () => {
  it('advertises what the Python MCP-Tx client does, from a client', () => {
    const python = capturedCapabilities('python-client-to-ts-server.jsonl', 'client->server');
    expect(python.experimental?.mcp_tx).toEqual({ version: '0.1.0', features: PYTHON_FEATURES });
    expect(mcpTxClientCapabilities().experimental?.mcp_tx).toEqual(python.experimental?.mcp_tx);
  });

  it('advertises the Python features and dedupe from a server, or no dedupe when told', () => {
    expect(mcpTxServerCapabilities().experimental?.mcp_tx).toEqual({
      version: '0.1.0',
      features: [...PYTHON_FEATURES, MCP_TX_DEDUPE_FEATURE],
    });
    expect(mcpTxServerCapabilities({}, { dedupe: false }).experimental?.mcp_tx).toEqual({
      version: '0.1.0',
      features: PYTHON_FEATURES,
    });
    expect(MCP_TX_DEDUPE_FEATURE).toBe('dedupe');
  });

  it('keeps the capabilities it is merged into', () => {
    const capabilities = mcpTxServerCapabilities({
      tools: { listChanged: true },
      experimental: { other: { a: 1 } },
    });
    expect(capabilities.tools).toEqual({ listChanged: true });
    expect(capabilities.experimental?.other).toEqual({ a: 1 });
    expect(serverDedupes(capabilities)).toBe(true);
  });

  it('tells a deduping server from one that only speaks MCP-Tx', () => {
    expect(serverDedupes(mcpTxServerCapabilities())).toBe(true);
    expect(advertisesMcpTx(mcpTxServerCapabilities({}, { dedupe: false }))).toBe(true);
    expect(serverDedupes(mcpTxServerCapabilities({}, { dedupe: false }))).toBe(false);
    // the Python MCP-Tx server speaks MCP-Tx, and ran a keyed retry twice (the capture's `effects`)
    const python = capturedCapabilities('ts-client-to-python-tx-server.jsonl', 'server->client');
    expect(advertisesMcpTx(python)).toBe(true);
    expect(serverDedupes(python)).toBe(false);
    // the mcp-tx demo server of the capture predates the feature
    const demo = capturedCapabilities('python-client-to-ts-server.jsonl', 'server->client');
    expect(advertisesMcpTx(demo)).toBe(true);
    expect(serverDedupes(demo)).toBe(false);
  });

  it('reads a bare block as MCP-Tx 0.1.0 without dedupe, and no feature where features is no list', () => {
    const bare = capturedCapabilities('ts-client-to-server-with-empty-mcp_tx.jsonl', 'server->client');
    expect(bare.experimental?.mcp_tx).toEqual({});
    expect(advertisesMcpTx(bare)).toBe(true); // as the Python client reads it
    expect(serverDedupes(bare)).toBe(false);
    // a block without a version is 0.1.0: its features count
    expect(serverDedupes({ experimental: { mcp_tx: { features: ['dedupe'] } } })).toBe(true);
    expect(advertisesMcpTx({ experimental: { mcp_tx: { features: ['ack'] } } })).toBe(true);
    expect(advertisesMcpTx({ experimental: { mcp_tx: null } } as never)).toBe(false);
    expect(advertisesMcpTx({ experimental: { mcp_tx: ['dedupe'] } })).toBe(false);
    expect(serverDedupes({ experimental: { mcp_tx: { version: '0.1.0', features: 'dedupe' } } })).toBe(false);
    expect(serverDedupes({ experimental: { mcp_tx: { version: '0.1.0' } } })).toBe(false);
    expect(serverDedupes({ experimental: {} })).toBe(false);
    expect(serverDedupes({})).toBe(false);
    expect(serverDedupes(undefined)).toBe(false);
    expect(advertisesMcpTxFeature(mcpTxClientCapabilities(), 'transactions')).toBe(true);
    expect(advertisesMcpTxFeature(mcpTxClientCapabilities(), 'dedupe')).toBe(false);
  });
});
