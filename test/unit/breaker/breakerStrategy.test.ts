import { describe, expect, it, vi } from 'vitest';
import {
  circuitOpenError,
  defaultIsFailure,
  permitReportingOnce,
  probeSlotsTakenError,
} from '../../../src/breaker/breaker.js';
import {
  BreakerOptionsSchema,
  type BreakerSnapshot,
  parseSnapshot,
} from '../../../src/breaker/breakerSchemas.js';
import {
  afterOutcome,
  type BreakerRules,
  recovered,
  retryAfterMs,
} from '../../../src/breaker/breakerStrategy.js';
import { parseOrThrow } from '../../../src/config/validators.js';
import { TxErrorCode } from '../../../src/core/errors.js';

const rules: BreakerRules = { failureThreshold: 3, recoveryTimeoutMs: 100, successThreshold: 2 };
const snapshot = (fields: Partial<BreakerSnapshot> = {}): BreakerSnapshot =>
  Object.freeze({ state: 'closed', failures: 0, successes: 0, openedAt: 0, ...fields });

describe('breakerStrategy: closed', () => {
  it('counts consecutive failures and opens at failureThreshold, at now', () => {
    const once = afterOutcome(snapshot(), 'failure', rules, 10);
    const twice = afterOutcome(once, 'failure', rules, 20);
    expect(twice).toEqual(snapshot({ failures: 2 }));
    expect(afterOutcome(twice, 'failure', rules, 30)).toEqual(
      snapshot({ state: 'open', failures: 3, openedAt: 30 }),
    );
  });

  it('resets the failure count on a success; a release counts nothing', () => {
    const failing = snapshot({ failures: 2 });
    expect(afterOutcome(failing, 'success', rules, 0)).toEqual(snapshot());
    expect(afterOutcome(failing, 'release', rules, 0)).toBe(failing);
    const healthy = snapshot();
    expect(afterOutcome(healthy, 'success', rules, 0)).toBe(healthy);
  });
});

describe('breakerStrategy: open and recovery', () => {
  const open = snapshot({ state: 'open', failures: 3, openedAt: 1_000 });

  it('stays open until recoveryTimeoutMs has passed, then is half-open with the failures kept', () => {
    expect(recovered(open, rules, 1_099)).toBe(open);
    expect(recovered(open, rules, 1_100)).toEqual(
      snapshot({ state: 'half-open', failures: 3, openedAt: 1_000 }),
    );
  });

  it('leaves a closed or half-open breaker as it is', () => {
    const halfOpen = snapshot({ state: 'half-open', successes: 1 });
    expect(recovered(snapshot(), rules, 5_000)).toEqual(snapshot());
    expect(recovered(halfOpen, rules, 5_000)).toBe(halfOpen);
  });

  it('gives retryAfterMs as the whole ms left until half-open, rounded up, never below 0', () => {
    expect(retryAfterMs(1_000, rules, 1_000)).toBe(100);
    expect(retryAfterMs(1_000, rules, 1_099.5)).toBe(1);
    expect(retryAfterMs(1_000, rules, 1_100)).toBe(0);
    expect(retryAfterMs(1_000, rules, 9_999)).toBe(0);
  });
});

describe('breakerStrategy: half-open', () => {
  const halfOpen = snapshot({ state: 'half-open', failures: 3, openedAt: 1_000 });

  it('closes after successThreshold successful probes, clearing the counts', () => {
    const once = afterOutcome(halfOpen, 'success', rules, 1_200);
    expect(once).toEqual({ ...halfOpen, successes: 1 });
    expect(afterOutcome(once, 'success', rules, 1_300)).toEqual(snapshot({ openedAt: 1_000 }));
  });

  it('re-opens at now on one failed probe, whatever the threshold', () => {
    const probed = afterOutcome(halfOpen, 'success', rules, 1_200);
    expect(afterOutcome(probed, 'failure', { ...rules, failureThreshold: 100 }, 1_250)).toEqual(
      snapshot({ state: 'open', failures: 4, openedAt: 1_250 }),
    );
  });
});

describe('shared breaker helpers', () => {
  it('a permit reports its first outcome only; an error isFailure does not count is a release', () => {
    const report = vi.fn();
    const isFailure = (error: unknown) => error === 'counts';
    const failed = permitReportingOnce(isFailure, report);
    failed.failure('counts');
    failed.success();
    const ignored = permitReportingOnce(isFailure, report);
    ignored.failure('does not count');
    ignored.release();
    expect(report.mock.calls).toEqual([['failure'], ['release']]);
  });

  it('builds the refusals: open with retryAfterMs (named or not), and half-open with its slots taken', () => {
    expect(circuitOpenError(250)).toMatchObject({
      code: TxErrorCode.CircuitOpen,
      retryable: false,
      retryAfterMs: 250,
      message: 'Circuit breaker is open; retry after 250 ms',
    });
    expect(circuitOpenError(0, 'pricing').message).toBe('Circuit breaker pricing is open; retry after 0 ms');
    expect(probeSlotsTakenError(2)).toMatchObject({ code: TxErrorCode.CircuitOpen, retryAfterMs: 0 });
    expect(probeSlotsTakenError(2).message).toContain('its 2 probe slot(s) are taken');
  });

  it('fills in the shared option defaults, isFailure included', () => {
    expect(parseOrThrow(BreakerOptionsSchema, {}, 'options')).toEqual({
      failureThreshold: 5,
      recoveryTimeoutMs: 60_000,
      successThreshold: 1,
      isFailure: defaultIsFailure,
    });
  });

  it('validates a snapshot, naming the bad field', () => {
    expect(parseSnapshot({ state: 'open', failures: 1, successes: 0, openedAt: 5 })).toEqual(
      snapshot({ state: 'open', failures: 1, openedAt: 5 }),
    );
    expect(() => parseSnapshot({ state: 'ajar', failures: 0, successes: 0, openedAt: 0 })).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field: 'snapshot.state' }),
    );
  });
});
