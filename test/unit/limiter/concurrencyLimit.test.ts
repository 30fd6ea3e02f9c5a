import fc from 'fast-check';
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { TxErrorCode } from '../../../src/core/errors.js';
import { concurrencyLimit } from '../../../src/limiter/concurrencyLimit.js';
import type { Permit } from '../../../src/limiter/limiter.js';
import { fuzz, optionValue } from '../core/fuzz.js';

describe('concurrencyLimit', () => {
  it('never has more than maxConcurrent permits out, admits in order, and admits all (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 40 }),
        (maxConcurrent, durations) => {
          const scheduler = new VirtualTimeScheduler();
          const limit = concurrencyLimit({ maxConcurrent });
          const order: number[] = [];
          let peak = 0;
          durations.forEach((duration, index) => {
            limit.acquire().subscribe((permit) => {
              order.push(index);
              peak = Math.max(peak, limit.active);
              scheduler.schedule(() => {
                permit.release();
                permit.release(); // idempotent
              }, duration);
            });
          });
          scheduler.flush();
          expect(peak).toBe(Math.min(maxConcurrent, durations.length));
          expect(order).toEqual(durations.map((_, index) => index));
          expect(limit.active).toBe(0);
          expect(limit.queued).toBe(0);
        },
      ),
      fuzz(100),
    );
  });

  it('frees a queued place on unsubscribe; a release admits the next still waiting', () => {
    const limit = concurrencyLimit({ maxConcurrent: 1 });
    const permits: Permit[] = [];
    const take = () => limit.acquire().subscribe((permit) => permits.push(permit));
    take();
    const leaving = take();
    take();
    expect([limit.active, limit.queued]).toEqual([1, 2]);
    leaving.unsubscribe();
    expect(limit.queued).toBe(1);
    permits[0]?.release();
    expect(permits).toHaveLength(2);
    expect([limit.active, limit.queued]).toEqual([1, 0]);
  });

  it('tryAcquire takes a free place at once, and none while full or while a call waits (FIFO kept)', () => {
    const limit = concurrencyLimit({ maxConcurrent: 1 });
    const first = limit.tryAcquire();
    expect(first).toBeDefined();
    expect(limit.tryAcquire()).toBeUndefined();
    const granted: Permit[] = [];
    limit.acquire().subscribe((permit) => granted.push(permit));
    first?.release();
    expect(granted).toHaveLength(1);
    expect(limit.tryAcquire()).toBeUndefined();
    expect(limit.active).toBe(1);
    granted[0]?.release();
    expect(limit.tryAcquire()).toBeDefined();
  });

  it('fails past maxQueue with MCP_TX_RATE_LIMITED while the queued call still starts', () => {
    const limit = concurrencyLimit({ maxConcurrent: 1, maxQueue: 1 });
    const permits: Permit[] = [];
    const errors: unknown[] = [];
    for (let index = 0; index < 3; index++) {
      limit.acquire().subscribe({ next: (permit) => permits.push(permit), error: (e) => errors.push(e) });
    }
    expect(errors).toEqual([
      expect.objectContaining({
        code: TxErrorCode.RateLimited,
        retryable: false,
        message: expect.stringContaining('1 calls waiting'),
      }),
    ]);
    permits[0]?.release();
    expect(permits).toHaveLength(2);
  });

  it.each([
    [{ maxConcurrent: 0 }, 'options.maxConcurrent'],
    [{ maxConcurrent: 1.5 }, 'options.maxConcurrent'],
    [{ maxConcurrent: 1, maxQueue: -1 }, 'options.maxQueue'],
    [{ maxConcurrent: 1, max: 2 }, 'options.max'],
  ])('rejects %o, naming %s', (options, field) => {
    expect(() => concurrencyLimit(options as Parameters<typeof concurrencyLimit>[0])).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation, field }),
    );
  });

  it('takes any options or refuses them with MCP_TX_VALIDATION naming the field; what it takes admits a first call at once (property)', () => {
    const options = fc.record(
      { maxConcurrent: optionValue, maxQueue: optionValue, other: optionValue },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(options, (candidate) => {
        let limit: ReturnType<typeof concurrencyLimit>;
        try {
          limit = concurrencyLimit(candidate as Parameters<typeof concurrencyLimit>[0]);
        } catch (error) {
          expect(error).toMatchObject({
            code: TxErrorCode.Validation,
            field: expect.stringMatching(/^options/),
          });
          return;
        }
        const permits: Permit[] = [];
        limit.acquire().subscribe((permit) => permits.push(permit));
        expect(permits).toHaveLength(1);
        permits[0]?.release();
        expect(limit.active).toBe(0);
      }),
      fuzz(300),
    );
  });
});
