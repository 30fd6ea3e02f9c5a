import { MAX_JSON_NUMBER_LENGTH } from '../config/toolInput.js';

/**
 * The length of `JSON.stringify(value)`, worked out without writing the text (several times
 * cheaper on small records): the same count, except that escapes are not counted (a string counts
 * its characters and quotes) and a number that is not a safe integer counts as the longest one
 * (25), and an object's inherited enumerable members count too. 0 for a value JSON writes nothing
 * of (`undefined`, a function); `undefined` when JSON cannot write the value (a cycle, a bigint).
 *
 * @example
 * jsonLength({ a: [1, 'xy', null] }); // 19, as JSON.stringify({ a: [1, 'xy', null] }).length
 */
export function jsonLength(value: unknown): number | undefined {
  try {
    return valueLength(value, '', []) ?? 0;
  } catch {
    return undefined;
  }
}

/**
 * `value`'s length in JSON, `undefined` where JSON leaves it out (a function, a symbol); `open`
 * holds the containers around it, to refuse a cycle.
 */
function valueLength(value: unknown, key: string | number, open: object[]): number | undefined {
  switch (typeof value) {
    case 'string':
      return value.length + 2;
    case 'number':
      return numberLength(value);
    case 'boolean':
      return value ? 4 : 5;
    case 'object':
      if (value === null) return 4;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function')
        return valueLength((value as { toJSON(key: string): unknown }).toJSON(String(key)), key, open);
      return containerLength(value, open);
    case 'bigint':
      throw new TypeError('JSON cannot write a bigint');
    default:
      return undefined;
  }
}

function numberLength(value: number): number {
  if (!Number.isFinite(value)) return 4; // null
  if (!Number.isSafeInteger(value)) return MAX_JSON_NUMBER_LENGTH;
  let length = value < 0 ? 2 : 1;
  for (let rest = Math.abs(value); rest >= 10; rest = Math.floor(rest / 10)) length++;
  return length;
}

function containerLength(container: object, open: object[]): number {
  if (open.includes(container)) throw new TypeError('JSON cannot write a cycle');
  open.push(container);
  const length = Array.isArray(container) ? arrayLength(container, open) : objectLength(container, open);
  open.pop();
  return length;
}

/** Brackets, commas, and each item (one JSON leaves out is written `null`). */
function arrayLength(items: readonly unknown[], open: object[]): number {
  let length = items.length > 0 ? items.length + 1 : 2;
  for (let index = 0; index < items.length; index++) {
    length += valueLength(items[index], index, open) ?? 4;
  }
  return length;
}

/**
 * Braces, commas, and each member JSON writes: its quoted key, a colon and its value. Members are
 * listed with `for…in` (several times cheaper than `Object.keys`), so an enumerable member of a
 * prototype counts too: an over-count, never an under-count.
 */
function objectLength(record: object, open: object[]): number {
  let length = 1;
  for (const key in record) {
    const member = valueLength((record as Record<string, unknown>)[key], key, open);
    if (member !== undefined) length += key.length + 4 + member;
  }
  return length === 1 ? 2 : length;
}
