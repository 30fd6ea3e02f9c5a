import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonLength } from '../../../src/idempotency/jsonLength.js';
import { fuzz } from '../core/fuzz.js';

/** `JSON.stringify(value)`'s length with each escape counted as one character, as jsonLength counts it. */
const unescapedJsonLength = (value: unknown) =>
  (JSON.stringify(value) ?? '').replace(/\\(u[0-9a-f]{4}|.)/g, 'x').length;

/** JSON values whose numbers are all safe integers: counted exactly. */
const integerJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value')),
    fc.dictionary(fc.string(), tie('value')),
  ),
})).value;

describe('jsonLength', () => {
  it('is the length of JSON.stringify, escapes counted as one character (property)', () => {
    fc.assert(
      fc.property(integerJson, (value) => {
        expect(jsonLength(value)).toBe(unescapedJsonLength(value));
      }),
      fuzz(300),
    );
  });

  it('never counts less than that, whatever the numbers (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(jsonLength(value)).toBeGreaterThanOrEqual(unescapedJsonLength(value));
      }),
      fuzz(300),
    );
    expect(jsonLength(-0.0000012345678901234567)).toBe(25);
    expect(jsonLength([Number.NaN, Number.POSITIVE_INFINITY])).toBe(JSON.stringify([null, null]).length);
  });

  it('leaves out what JSON leaves out, writes null where JSON does, and follows toJSON', () => {
    const items: unknown[] = [undefined, () => 1];
    items[3] = 1; // a hole at 2
    const value = { gone: undefined, fn: () => 1, items, at: new Date(0) };
    expect(jsonLength(value)).toBe(JSON.stringify(value).length);
    expect(jsonLength(undefined)).toBe(0);
  });

  it('counts a value shared by two members twice, as JSON writes it', () => {
    const shared = { x: 1 };
    expect(jsonLength([shared, shared])).toBe(JSON.stringify([shared, shared]).length);
  });

  it('is undefined for what JSON cannot write: a cycle, a bigint', () => {
    const cyclic: Record<string, unknown> = { a: [1] };
    (cyclic.a as unknown[]).push(cyclic);
    expect(jsonLength(cyclic)).toBeUndefined();
    expect(jsonLength({ big: 1n })).toBeUndefined();
  });
});
