import { describe, expect, it } from 'vitest';
import { mergeRetry } from '../../../src/config/retryPolicy.js';
import { DEFAULT_RETRY_POLICY, TxErrorCode } from '../../../src/index.js';

describe('mergeRetry', () => {
  it('fills the MCP-Tx 0.1.0 defaults', () => {
    expect(mergeRetry(undefined)).toEqual(DEFAULT_RETRY_POLICY);
    expect(DEFAULT_RETRY_POLICY).toMatchObject({
      maxAttempts: 3,
      baseDelayMs: 1_000,
      maxDelayMs: 30_000,
      multiplier: 2,
    });
  });

  it('lets later layers win, field by field', () => {
    expect(mergeRetry({ maxAttempts: 5 }, { baseDelayMs: 10 }, { maxAttempts: 2 })).toMatchObject({
      maxAttempts: 2,
      baseDelayMs: 10,
      maxDelayMs: 30_000,
    });
  });

  it('is off when the most specific layer that speaks says false, on again when a later one gives a policy', () => {
    expect(mergeRetry({ maxAttempts: 5 }, false, undefined)).toBe(false);
    expect(mergeRetry(false, undefined, undefined)).toBe(false);
    expect(mergeRetry({ maxAttempts: 5 }, false, { baseDelayMs: 1 })).toMatchObject({
      maxAttempts: 5,
      baseDelayMs: 1,
    });
  });

  it('checks the merged policy: maxDelayMs under a base set on another layer is an error', () => {
    expect(() => mergeRetry({ maxDelayMs: 500 }, undefined, {})).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'retry.maxDelayMs' }),
    );
  });
});
