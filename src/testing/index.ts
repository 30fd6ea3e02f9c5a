/**
 * Test helpers for your own pipelines: `faultyTransport` injects failed sends, lost responses,
 * delays and disconnects into any MCP transport, seeded.
 *
 * @module mcp-tx/testing
 */
export { type FaultCounts, type FaultOptions, FaultyTransport, faultyTransport } from './faultyTransport.js';
