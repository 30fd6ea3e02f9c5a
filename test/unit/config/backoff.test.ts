import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, type Jitter, retryDelay } from '../../../src/config/retryPolicy.js';

const policy = { ...DEFAULT_RETRY_POLICY, jitter: false as Jitter };

describe('retryDelay', () => {
  it('grows exponentially from the base and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(policy, n))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000,
    ]);
  });

  it('caps a delay whose growth overflows, and keeps a zero base at 0', () => {
    const steep = { ...policy, multiplier: 1_000 };
    expect(retryDelay(steep, 5_000)).toBe(30_000);
    expect(retryDelay({ ...steep, baseDelayMs: 0 }, 5_000)).toBe(0);
  });

  it('applies each jitter mode', () => {
    const at = (jitter: Jitter, random: number) => retryDelay({ ...policy, jitter }, 2, () => random);
    expect([at(true, 0), at(true, 0.5), at(true, 0.999_999)].map(Math.round)).toEqual([1_600, 2_000, 2_400]);
    expect(at('proportional', 0)).toBe(at(true, 0));
    expect([at('full', 0), at('full', 0.5)]).toEqual([0, 1_000]);
    expect([at('equal', 0), at('equal', 0.5)]).toEqual([1_000, 1_500]);
    expect([at('none', 0.3), at(false, 0.9)]).toEqual([2_000, 2_000]);
  });

  it('stays within [0, maxDelayMs] for every policy, retry number and random draw', () => {
    fc.assert(
      fc.property(
        fc.record({
          baseDelayMs: fc.integer({ min: 0, max: 100_000 }),
          extra: fc.integer({ min: 0, max: 1_000_000 }),
          multiplier: fc.double({ min: 1, max: 1_000, noNaN: true }),
          jitter: fc.constantFrom<Jitter>(true, false, 'full', 'equal', 'none', 'proportional'),
        }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        ({ baseDelayMs, extra, multiplier, jitter }, n, random) => {
          const maxDelayMs = baseDelayMs + extra;
          const delay = retryDelay({ baseDelayMs, maxDelayMs, multiplier, jitter }, n, () => random);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(maxDelayMs);
        },
      ),
    );
  });

  it('never shrinks from one retry to the next without jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.integer({ min: 1, max: 200 }),
        (baseDelayMs, multiplier, n) => {
          const flat = { baseDelayMs, maxDelayMs: 60_000 + baseDelayMs, multiplier, jitter: false as Jitter };
          expect(retryDelay(flat, n + 1)).toBeGreaterThanOrEqual(retryDelay(flat, n));
        },
      ),
    );
  });
});
