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
  frozenJsonCopy(args);
}

/**
 * Checks tool arguments as {@link assertJsonArgs} does and, in the same walk, makes the deep frozen
 * copy a JSON round trip would give (properties set to `undefined` left out, `undefined` and holes
 * in arrays as `null`, `-0` as `0`), with an upper bound of its size as UTF-8 JSON.
 *
 * @example
 * const { copy, maxJsonBytes } = frozenJsonCopy({ q: 'rxjs', page: undefined }); // copy: { q: 'rxjs' }
 */
export function frozenJsonCopy(args: unknown): { copy: JsonObject; maxJsonBytes: number } {
  if (!isPlainObject(args)) {
    throw validationError('args', `must be a plain JSON object (got ${describe(args)})`);
  }
  const walk = new JsonWalk();
  return { copy: walk.container(args) as JsonObject, maxJsonBytes: walk.maxBytes };
}

/**
 * The longest a finite number is in JSON: 25 characters (`-0.0000012345678901234567`; the largest
 * in exponent form, `-1.7976931348623157e+308`, is 24).
 */
export const MAX_JSON_NUMBER_LENGTH = 25;
/** Worst-case UTF-8 bytes per UTF-16 code unit of a JSON string (a control character as `\u001f`). */
const MAX_BYTES_PER_CHAR = 6;

/**
 * One walk over arguments: the containers open above the current value (for cycles and depth) and
 * the keys leading to it (the path, spelled out only when a value is refused).
 */
class JsonWalk {
  maxBytes = 0;
  private readonly open: object[] = [];
  private readonly keys: (string | number)[] = [];

  value(value: unknown): unknown {
    switch (typeof value) {
      case 'string':
        this.maxBytes += 2 + value.length * MAX_BYTES_PER_CHAR;
        return value;
      case 'boolean':
        this.maxBytes += 5;
        return value;
      case 'number':
        if (!Number.isFinite(value)) throw this.refuse(`must be a finite number (got ${value})`);
        this.maxBytes += MAX_JSON_NUMBER_LENGTH;
        return value === 0 ? 0 : value; // -0 is 0 in JSON
      case 'undefined':
        this.maxBytes += 4;
        return null; // in an array (object properties set to undefined are left out before)
      case 'object':
        this.maxBytes += 4;
        return value === null ? null : this.container(value);
      default:
        throw this.refuse(`must be plain JSON (got ${typeof value})`);
    }
  }

  container(value: object): object {
    if (this.open.includes(value)) throw this.refuse('must not contain a cycle');
    if (this.open.length >= MAX_ARGS_DEPTH)
      throw this.refuse(`must not nest deeper than ${MAX_ARGS_DEPTH} levels`);
    const isArray = Array.isArray(value);
    if (!isArray && !isPlainObject(value)) throw this.refuse(`must be plain JSON (got ${describe(value)})`);
    this.open.push(value);
    const copy = isArray ? this.array(value) : this.object(value as JsonObject);
    this.open.pop();
    this.maxBytes += 2;
    return Object.freeze(copy);
  }

  private array(items: readonly unknown[]): unknown[] {
    const copy = new Array<unknown>(items.length);
    for (let index = 0; index < items.length; index++) {
      this.keys.push(index);
      copy[index] = this.value(items[index]);
      this.keys.pop();
      this.maxBytes += 1;
    }
    return copy;
  }

  private object(entries: JsonObject): JsonObject {
    const copy: JsonObject = {};
    for (const key of Object.keys(entries)) {
      const item = entries[key];
      if (item === undefined) continue;
      this.keys.push(key);
      const value = this.value(item);
      this.keys.pop();
      this.maxBytes += 3 + key.length * MAX_BYTES_PER_CHAR;
      // `__proto__` as JSON.parse makes it: an own property, not the prototype
      if (key === '__proto__')
        Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
      else copy[key] = value as JsonObject[string];
    }
    return copy;
  }

  private refuse(reason: string): Error {
    const path = this.keys.map((key) => (typeof key === 'number' ? `[${key}]` : `.${key}`)).join('');
    return validationError(`args${path}`, reason);
  }
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
