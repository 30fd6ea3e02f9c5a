import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  comparesFingerprintsLocally,
  fingerprint,
  fingerprintFor,
  sameArguments,
  scopedKey,
} from '../../../src/idempotency/fingerprint.js';
import { memoryIdempotencyStore } from '../../../src/idempotency/memoryStore.js';
import { portableSha256Hex, sha256Hex } from '../../../src/idempotency/sha256Hex.js';
import { fuzz } from '../core/fuzz.js';

describe('fingerprint', () => {
  it('ignores key order at every depth but not array order', () => {
    expect(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] })).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
    expect(fingerprint({ a: 1, b: { c: 2, d: 3 } })).toBe(fingerprint({ b: { d: 3, c: 2 }, a: 1 }));
    expect(fingerprint({ list: [1, 2] })).not.toBe(fingerprint({ list: [2, 1] }));
    expect(fingerprint({ a: 1 })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('drops undefined members like JSON.stringify, and writes undefined array items as null', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
    expect(fingerprint({ a: 1, b: undefined })).toBe(fingerprint({ a: 1 }));
  });

  it('does not depend on the order keys were written in, at any depth (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(fingerprint(withKeysReversed(value))).toBe(fingerprint(value));
      }),
    );
  });

  it('is JSON that reads back as the same value (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('tells different arguments apart (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (left, right) => {
        const sameValue = canonicalJson(left) === canonicalJson(right);
        expect(fingerprint(left) === fingerprint(right)).toBe(sameValue);
      }),
    );
  });

  it('keeps the values of earlier versions (sha256 hex of the canonical JSON): stores hold them', () => {
    expect(fingerprint({ order: 'o-42', amount: 1999 })).toBe(
      '6fc8ea07a4deff05ff30e1968a56a588f7d98c47eb67d09e7a017c26921823d7',
    );
    expect(fingerprint({ q: 'héllo ✓ 😀' })).toBe(
      'a01c9bd95766a3a7808c5ef00b752ae3ea357804512245a658b62b82fca26bb5',
    );
  });

  it('hashes the same in pure JS (browsers) as natively on Node, whatever the text (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.jsonValue().map(canonicalJson)), (text) => {
        expect(portableSha256Hex(text)).toBe(sha256Hex(text));
      }),
      fuzz(300),
    );
    expect(portableSha256Hex('x'.repeat(100_000))).toBe(sha256Hex('x'.repeat(100_000)));
  });

  it('gives a store that compares locally short canonical JSON itself, a hash beyond; any other store the hash', () => {
    const local = memoryIdempotencyStore();
    const long = { text: 'x'.repeat(64) };
    expect(fingerprintFor(local, { b: 1, a: 2 })).toBe('{"a":2,"b":1}');
    expect(fingerprintFor(local, long)).toBe(fingerprint(long));
    expect(fingerprintFor(comparesFingerprintsLocally({}), { n: 1 })).toBe('{"n":1}');
    const shared = { ...local }; // a copy is not marked: its fingerprints may leave the process
    expect(fingerprintFor(shared, { n: 1 })).toBe(fingerprint({ n: 1 }));
  });

  it('tells the same arguments whichever kind of fingerprint each side has (property)', () => {
    const local = memoryIdempotencyStore();
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (left, right) => {
        const same = canonicalJson(left) === canonicalJson(right);
        expect(sameArguments(fingerprintFor(local, left), fingerprint(right))).toBe(same);
        expect(sameArguments(fingerprint(left), fingerprintFor(local, right))).toBe(same);
        expect(sameArguments(fingerprintFor(local, left), fingerprintFor(local, right))).toBe(same);
      }),
    );
    expect(sameArguments('{"n":1}', fingerprint({ n: 1 }))).toBe(true);
  });

  it('scopes keys by tool', () => {
    expect(scopedKey('charge', 'order-1')).not.toBe(scopedKey('refund', 'order-1'));
  });
});

/** `value` rebuilt with every object's keys inserted in reverse order. */
function withKeysReversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withKeysReversed);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value).reverse();
  return Object.fromEntries(entries.map(([key, member]) => [key, withKeysReversed(member)]));
}
