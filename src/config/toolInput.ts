import * as z from 'zod';
import { validationError } from '../core/errors.js';
import type { JsonObject } from '../core/types.js';
import { parseOrThrow } from './validators.js';

/** Deepest nesting of objects and arrays accepted in tool arguments. */
export const MAX_ARGS_DEPTH = 64;

/** Longest tool name accepted. */
export const MAX_TOOL_NAME_LENGTH = 256;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
const TOOL_NAME = /^[^\s\u0000-\u001f\u007f]+$/;

const ToolNameSchema = z
  .string({ message: 'must be a string' })
  .min(1, 'must not be empty')
  .max(MAX_TOOL_NAME_LENGTH, `must be at most ${MAX_TOOL_NAME_LENGTH} characters`)
  .regex(TOOL_NAME, 'must not contain whitespace or control characters');

/**
 * Checks a tool name, or throws `MCP_TX_VALIDATION` naming `name` (zod says why; a good name skips it).
 *
 * @example
 * assertToolName('get weather'); // throws: Invalid name: must not contain whitespace or control characters
 */
export function assertToolName(name: unknown): asserts name is string {
  if (typeof name === 'string' && name.length <= MAX_TOOL_NAME_LENGTH && TOOL_NAME.test(name)) return;
  parseOrThrow(ToolNameSchema, name, 'name');
}

/**
 * Checks that tool arguments are a plain JSON object (no cycles, BigInt, functions, symbols,
 * non-finite numbers or class instances), or throws `MCP_TX_VALIDATION` naming the bad path.
 *
 * @example
 * assertJsonArgs({ when: new Date() }); // throws: Invalid args.when: must be plain JSON (got Date)
 */
export function assertJsonArgs(args: unknown): asserts args is JsonObject {
  if (!isPlainObject(args)) {
    throw validationError('args', `must be a plain JSON object (got ${describe(args)})`);
  }
  checkJsonValue(args, 'args', new Set());
}

function checkJsonValue(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw validationError(path, `must be a finite number (got ${value})`);
      return;
    case 'object':
      if (value === null) return;
      checkJsonContainer(value, path, ancestors);
      return;
    default:
      throw validationError(path, `must be plain JSON (got ${typeof value})`);
  }
}

function checkJsonContainer(value: object, path: string, ancestors: Set<object>): void {
  if (ancestors.has(value)) throw validationError(path, 'must not contain a cycle');
  if (ancestors.size >= MAX_ARGS_DEPTH)
    throw validationError(path, `must not nest deeper than ${MAX_ARGS_DEPTH} levels`);
  if (!Array.isArray(value) && !isPlainObject(value)) {
    throw validationError(path, `must be plain JSON (got ${describe(value)})`);
  }
  ancestors.add(value);
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      checkJsonValue(item, `${path}[${index}]`, ancestors);
    });
  } else {
    for (const [key, item] of Object.entries(value)) checkJsonValue(item, `${path}.${key}`, ancestors);
  }
  ancestors.delete(value);
}

/** Whether `value` is a plain object: made by `{}` or `Object.create(null)`, not an array, a class instance or a Map. */
export function isPlainObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return value.constructor?.name ?? 'an object';
  return typeof value;
}
