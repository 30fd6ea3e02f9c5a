/**
 * The Node-only parts, kept out of `mcp-tx` so that the root entry and `mcp-tx/operators` bundle for
 * browsers: the append-only JSONL event store (`node:fs`).
 *
 * @module mcp-tx/node
 */
export { JsonlEventStore } from './events/jsonlEventStore.js';
