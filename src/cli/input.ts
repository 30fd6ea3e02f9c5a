import * as z from 'zod';
import { MAX_KEY_LENGTH, parseOrThrow } from '../config/validators.js';
import type { JsonObject } from '../core/types.js';
import { fingerprint } from '../idempotency/fingerprint.js';

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
const FIELDS: ReadonlySet<string> = new Set(Object.keys(InputLineSchema.shape));

/**
 * Reads JSONL calls, one `{ "tool", "arguments", "idempotency_key"? }` a line (a UTF-8 byte order
 * mark at the start is ignored). Blank lines are skipped; a line that is not such an object becomes
 * a {@link BadLine} naming what is wrong, and the others are kept. So does a line that reuses an
 * earlier line's `idempotency_key` for the same tool with other arguments (the server would run
 * only one of them); the same call repeated under its key is kept, and deduped when run.
 *
 * @example
 * parseInput('{"tool":"search","arguments":{"q":"rxjs"}}\n{"tool":');
 * // { lines: [{ line: 1, tool: 'search', arguments: { q: 'rxjs' } }], bad: [{ line: 2, message: 'not JSON (…)' }] }
 */
export function parseInput(text: string): { lines: BatchLine[]; bad: BadLine[] } {
  const lines: BatchLine[] = [];
  const bad: BadLine[] = [];
  const keyed = new Map<string, { line: number; fingerprint: string }>();
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((raw, index) => {
      if (raw.trim() === '') return;
      const line = index + 1;
      try {
        const call = parseLine(raw, line);
        checkKeyReuse(call, keyed);
        lines.push(call);
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
  const unknownField = Object.keys(value).find((field) => !FIELDS.has(field));
  if (unknownField !== undefined) {
    throw new Error(
      `Invalid ${unknownField}: is not a known field (a line has "tool", "arguments", "idempotency_key")`,
    );
  }
  const parsed = parseOrThrow(InputLineSchema, value, '');
  const call: BatchLine = { line, tool: parsed.tool, arguments: parsed.arguments };
  return parsed.idempotency_key === undefined ? call : { ...call, idempotencyKey: parsed.idempotency_key };
}

/** Throws when `call` reuses the key of an earlier line with the same tool for other arguments; else remembers it. */
function checkKeyReuse(call: BatchLine, keyed: Map<string, { line: number; fingerprint: string }>): void {
  if (call.idempotencyKey === undefined) return;
  const scope = JSON.stringify([call.tool, call.idempotencyKey]);
  const print = fingerprint(call.arguments);
  const first = keyed.get(scope);
  if (first === undefined) keyed.set(scope, { line: call.line, fingerprint: print });
  else if (first.fingerprint !== print) {
    throw new Error(
      `Invalid idempotency_key: "${call.idempotencyKey}" is already the key of line ${first.line} (${call.tool} with other arguments)`,
    );
  }
}
