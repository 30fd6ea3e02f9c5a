import { asyncScheduler, from, lastValueFrom, mergeMap, type SchedulerLike, tap, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { throttle } from '../../../operators/throttle.js';
import { concurrencyLimit } from '../../../src/limiter/concurrencyLimit.js';
import { tokenBucket } from '../../../src/limiter/tokenBucket.js';
import { connectFixture, type Fixture } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

describe('throttle over a real MCP server', () => {
  it('starts a burst of 20 calls no faster than burst + rate·T, and completes them all', async () => {
    fixture = await connectFixture();
    // The bucket's clock, read when it grants a token: a start time no CPU stall can shift.
    let grantedAt = 0;
    const clock: SchedulerLike = {
      now: () => {
        grantedAt = Date.now();
        return grantedAt;
      },
      schedule: asyncScheduler.schedule.bind(asyncScheduler),
    };
    const before = Date.now();
    const limiter = tokenBucket({ ratePerSecond: 200, burst: 5, scheduler: clock });
    const startedAt: number[] = [];
    const results = await lastValueFrom(
      from(Array.from({ length: 20 }, (_, n) => n)).pipe(
        mergeMap((value) =>
          fixture.tx
            .attempt$('echo', { value })
            .pipe(tap({ subscribe: () => startedAt.push(grantedAt) }), throttle(limiter)),
        ),
        toArray(),
      ),
    );
    expect(results).toHaveLength(20);
    expect(fixture.seen.filter(({ tool }) => tool === 'echo')).toHaveLength(20);
    // the 20th start needs 15 refilled tokens: 75 ms of wall clock at least
    expect(Math.max(...startedAt) - before).toBeGreaterThanOrEqual(75);
    // any window [a, b] of starts holds at most burst + rate·(b − a) of them
    for (let first = 0; first < startedAt.length; first++) {
      for (let last = first; last < startedAt.length; last++) {
        const windowMs = (startedAt[last] as number) - (startedAt[first] as number);
        expect(last - first + 1).toBeLessThanOrEqual(5 + (200 * windowMs) / 1_000 + 1e-6);
      }
    }
  });

  it('keeps at most maxConcurrent handlers running at once', async () => {
    let running = 0;
    let peak = 0;
    fixture = await connectFixture({
      register: (server) =>
        server.registerTool('busy', { inputSchema: { ms: z.number() } }, async ({ ms }) => {
          running += 1;
          peak = Math.max(peak, running);
          await new Promise((resolve) => setTimeout(resolve, ms));
          running -= 1;
          return { content: [{ type: 'text', text: 'ok' }] };
        }),
    });
    const limit = concurrencyLimit({ maxConcurrent: 2 });
    const results = await lastValueFrom(
      from(Array.from({ length: 8 }, () => 5)).pipe(
        mergeMap((ms) => fixture.tx.attempt$('busy', { ms }).pipe(throttle(limit))),
        toArray(),
      ),
    );
    expect(results).toHaveLength(8);
    expect(peak).toBe(2);
    expect(limit.active).toBe(0);
  });
});
