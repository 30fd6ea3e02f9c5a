import { describe, expect, it } from 'vitest';
import { newRequestId } from '../../../src/core/ids.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newRequestId', () => {
  it('is a uuid v7 whose first 48 bits are the current Unix milliseconds', () => {
    const before = Date.now();
    const id = newRequestId();
    const after = Date.now();
    expect(id).toMatch(UUID_V7);
    const millis = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(millis).toBeGreaterThanOrEqual(before);
    expect(millis).toBeLessThanOrEqual(after);
  });

  it('is unique and well-formed across many refills of the random pool', () => {
    const ids = Array.from({ length: 20_000 }, newRequestId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => UUID_V7.test(id))).toBe(true);
  });

  it('spreads its random bits: every hex digit of the random part appears', () => {
    const digits = new Set(Array.from({ length: 200 }, () => newRequestId().slice(-12)).join(''));
    expect(digits.size).toBe(16);
  });
});
