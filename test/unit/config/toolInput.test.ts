import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frozenJsonCopy } from '../../../src/config/toolInput.js';
import { TxErrorCode } from '../../../src/index.js';

const FUZZ_RUNS = 200 * Number(process.env.FUZZ_FACTOR ?? 1);

const utf8Bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).byteLength;

function isDeepFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

describe('frozenJsonCopy', () => {
  it('copies as a JSON round trip would: undefined left out or null, holes as null, -0 as 0, __proto__ an own key', () => {
    // biome-ignore lint/suspicious/noSparseArray: a hole on purpose
    const sparse = [1, , 3];
    const args = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    Object.assign(args, {
      gone: undefined,
      list: [undefined, -0, sparse, { deep: [{ x: 'é\u0000😀' }] }],
      nothing: null,
    });
    const { copy } = frozenJsonCopy(args);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(args));
    expect(copy).toStrictEqual(JSON.parse(JSON.stringify(args)));
    expect(Object.is((copy.list as unknown[])[1], 0)).toBe(true);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.hasOwn(copy, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(isDeepFrozen(copy)).toBe(true);
  });

  it('never shares a container with the arguments it copies', () => {
    const inner = { n: 1 };
    const args = { inner, list: [inner] };
    const { copy } = frozenJsonCopy(args);
    inner.n = 2;
    expect(copy).toEqual({ inner: { n: 1 }, list: [{ n: 1 }] });
    expect(Object.isFrozen(inner)).toBe(false);
  });

  it('any JSON-like arguments: the round trip, deep frozen, within its size bound (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), (args) => {
        const { copy, maxJsonBytes } = frozenJsonCopy(args);
        expect(copy).toStrictEqual(JSON.parse(JSON.stringify(args)));
        expect(isDeepFrozen(copy)).toBe(true);
        expect(utf8Bytes(copy)).toBeLessThanOrEqual(maxJsonBytes);
      }),
      { numRuns: FUZZ_RUNS, seed: 14 },
    );
  });

  it('bounds the longest numbers JSON writes (25 characters) from above', () => {
    const args = { longest: Array.from({ length: 100 }, () => -0.0000012345678901234567) };
    expect(JSON.stringify(-0.0000012345678901234567)).toHaveLength(25);
    expect(utf8Bytes(args)).toBeLessThanOrEqual(frozenJsonCopy(args).maxJsonBytes);
  });

  it.each([
    [{ when: new Date(0) }, 'args.when', 'must be plain JSON (got Date)'],
    [{ a: [1, { b: Number.NaN }] }, 'args.a[1].b', 'must be a finite number (got NaN)'],
    [{ f: () => 1 }, 'args.f', 'must be plain JSON (got function)'],
    [{ big: 1n }, 'args.big', 'must be plain JSON (got bigint)'],
    [[1], 'args', 'must be a plain JSON object (got an array)'],
  ])('refuses bad arguments, naming the path (%#)', (args, field, reason) => {
    expect(() => frozenJsonCopy(args)).toThrow(
      expect.objectContaining({ code: TxErrorCode.Validation, message: `Invalid ${field}: ${reason}` }),
    );
  });

  it('refuses a cycle and nesting deeper than 64 levels, naming where', () => {
    const cyclic: Record<string, unknown> = { a: {} };
    (cyclic.a as Record<string, unknown>).back = cyclic;
    expect(() => frozenJsonCopy(cyclic)).toThrow('Invalid args.a.back: must not contain a cycle');
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let level = 0; level < 64; level++) {
      deep.d = {};
      deep = deep.d as Record<string, unknown>;
    }
    expect(() => frozenJsonCopy(root)).toThrow(/Invalid args(\.d){64}: must not nest deeper than 64 levels/);
  });
});
