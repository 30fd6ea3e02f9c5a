import { z } from 'zod';
import { MAX_KEY_LENGTH, parseOrThrow } from '../schemas.js';
import type { JsonObject } from '../types.js';

/** One call to make: an input line, numbered as in its file (1-based). */
export interface BatchLine {
  readonly line: number;
  readonly tool: string;
  readonly arguments: JsonObject;
  readonly idempotencyKey?: string;
}

/** An input line that is not a call, with the reason. */
export interface BadLine {
  readonly line: number;
  readonly message: string;
}

const InputLineSchema = z.strictObject({
  tool: z.string({ message: 'must be a string (the tool name)' }).min(1, 'must not be empty'),
  arguments: z.record(z.string(), z.unknown(), { message: 'must be a JSON object' }).default({}),
  idempotency_key: z
    .string({ message: 'must be a string' })
    .min(1, 'must not be empty')
    .max(MAX_KEY_LENGTH, `must be at most ${MAX_KEY_LENGTH} characters`)
    .optional(),
});

/**
 * Reads JSONL calls, one `{ "tool", "arguments", "idempotency_key"? }` a line. Blank lines are
 * skipped; a line that is not such an object becomes a {@link BadLine} naming what is wrong, and the
 * others are kept.
 *
 * @example
 * parseInput('{"tool":"search","arguments":{"q":"rxjs"}}\n{"tool":');
 * // { lines: [{ line: 1, tool: 'search', arguments: { q: 'rxjs' } }], bad: [{ line: 2, message: 'not JSON (…)' }] }
 */
export function parseInput(text: string): { lines: BatchLine[]; bad: BadLine[] } {
  const lines: BatchLine[] = [];
  const bad: BadLine[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw.trim() === '') return;
    const line = index + 1;
    try {
      lines.push(parseLine(raw, line));
    } catch (error) {
      bad.push({ line, message: error instanceof Error ? error.message : String(error) });
    }
  });
  return { lines, bad };
}

function parseLine(raw: string, line: number): BatchLine {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new Error(`not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('must be a JSON object { "tool", "arguments", "idempotency_key"? }');
  }
  const parsed = parseOrThrow(InputLineSchema, value, '');
  const call: BatchLine = { line, tool: parsed.tool, arguments: parsed.arguments };
  return parsed.idempotency_key === undefined ? call : { ...call, idempotencyKey: parsed.idempotency_key };
}
