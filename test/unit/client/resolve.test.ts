import { describe, expect, it } from 'vitest';
import { changesOperators } from '../../../src/client/resolve.js';

describe('changesOperators: whether call options change the operators a call goes through', () => {
  it('is false for no options and for options that switch nothing', () => {
    expect(changesOperators(undefined)).toBe(false);
    expect(changesOperators({})).toBe(false);
    expect(
      changesOperators({ idempotencyKey: 'order-1', timeoutMs: 5_000, signal: AbortSignal.abort() }),
    ).toBe(false);
  });

  it('is true for a stage switched off or a retry policy of the call', () => {
    for (const stage of ['limiter', 'breaker', 'dedupe', 'monitor', 'record', 'trace'] as const) {
      expect(changesOperators({ [stage]: false })).toBe(true);
    }
    expect(changesOperators({ retry: { maxAttempts: 2 } })).toBe(true);
    expect(changesOperators({ retry: false })).toBe(true);
  });
});
