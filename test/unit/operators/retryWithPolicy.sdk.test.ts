import { firstValueFrom, switchMap, throwError, timer, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { retryWithPolicy } from '../../../operators/retryWithPolicy.js';
import { CircuitBreaker } from '../../../src/breaker/circuitBreaker.js';
import type { TxConfig } from '../../../src/client/options.js';
import { TxError, TxErrorCode } from '../../../src/core/errors.js';
import { storeUnavailable } from '../../../src/core/storeDeadline.js';
import { memoryIdempotencyStore } from '../../../src/idempotency/memoryStore.js';
import type { IdempotencyStore } from '../../../src/idempotency/store.js';
import { tokenBucket } from '../../../src/limiter/tokenBucket.js';
import { txTool } from '../../../src/server/txTool.js';
import { connectFixture, expectFailure, type Fixture, wireOf } from '../../support/fixture.js';
import { advanceVirtual } from '../../support/virtualTime.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

const quick = { baseDelayMs: 2, maxDelayMs: 5, jitter: false as const };
const wireRetryCounts = () => fixture.seen.map((seen) => wireOf(seen)?.retry_count);

describe('retryWithPolicy over a real MCP server', () => {
  it('retries a transient tool error with the same request id and counting retry_count', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('flaky', { key: 'a', failTimes: 2 });
    const result = await firstValueFrom(call.pipe(retryWithPolicy(quick)));
    expect(result.meta.attempts).toBe(3);
    expect(fixture.effects.get('a')).toBe(3);
    expect(wireRetryCounts()).toEqual([0, 1, 2]);
    const ids = fixture.seen.map((seen) => wireOf(seen)?.request_id);
    expect(new Set(ids)).toEqual(new Set([call.request.requestId]));
  });

  it('does not retry a tool error without a retryable marker', async () => {
    fixture = await connectFixture();
    const error = await expectFailure(
      firstValueFrom(fixture.tx.attempt$('boom', { message: 'no' }).pipe(retryWithPolicy(quick))),
    );
    expect(error).toMatchObject({ code: TxErrorCode.ToolError });
    expect(error.meta?.attempts).toBe(1);
    expect(fixture.seen).toHaveLength(1);
  });

  it('does not repeat an ambiguous timeout of a tool with side effects, and says why', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('slow_effect', { key: 'b', ms: 200 }, { timeoutMs: 20 });
    const error = await expectFailure(firstValueFrom(call.pipe(retryWithPolicy(quick))));
    expect(error).toMatchObject({ code: TxErrorCode.Timeout, retryable: false });
    expect(error.message).toContain('retryAmbiguous');
    expect(error.meta).toMatchObject({ attempts: 1, status: 'timeout' });
    expect(fixture.effects.get('b')).toBe(1);
  });

  it.each([
    ['slow_idempotent', {}, {}, true],
    ['slow_read', {}, {}, true],
    // speaking MCP-Tx does not make a keyed repeat safe: the dedupe feature (or trustServerDedupe) does
    ['slow_effect', { idempotencyKey: 'k' }, {}, false],
    ['slow_effect', { idempotencyKey: 'k' }, { serverDedupes: true }, true],
    ['slow_effect', { idempotencyKey: 'k' }, { config: { trustServerDedupe: true } }, true],
    ['slow_effect', {}, { serverDedupes: true }, false],
  ] as const)(
    'retries a timeout of %s %o on a MCP-Tx server %o: %s',
    async (tool, options, server, retried) => {
      fixture = await connectFixture(server);
      const call = fixture.tx.attempt$(tool, { key: 'c', ms: 100 }, { timeoutMs: 15, ...options });
      await expectFailure(firstValueFrom(call.pipe(retryWithPolicy({ ...quick, maxAttempts: 2 }))));
      expect(fixture.effects.get('c')).toBe(retried ? 2 : 1);
    },
  );

  it('retries an ambiguous timeout on a plain MCP server only when the policy opts in', async () => {
    fixture = await connectFixture({ serverTx: false });
    const call = () =>
      fixture.tx.attempt$('slow_effect', { key: 'd', ms: 100 }, { timeoutMs: 15, idempotencyKey: 'k' });
    await expectFailure(firstValueFrom(call().pipe(retryWithPolicy({ ...quick, maxAttempts: 2 }))));
    expect(fixture.effects.get('d')).toBe(1);
    await expectFailure(
      firstValueFrom(call().pipe(retryWithPolicy({ ...quick, maxAttempts: 2, retryAmbiguous: true }))),
    );
    expect(fixture.effects.get('d')).toBe(3);
  });
});

describe('retryWithPolicy counts the attempts sent, over a real MCP server', () => {
  /** Runs a `flaky` call that always fails through the default pipeline of `config`, in virtual time. */
  async function failingCall(config: (scheduler: VirtualTimeScheduler) => TxConfig) {
    const scheduler = new VirtualTimeScheduler();
    fixture = await connectFixture({
      config: { scheduler, retry: { baseDelayMs: 100, jitter: false }, ...config(scheduler) },
    });
    const failure = expectFailure(fixture.tx.call('flaky', { key: 'k', failTimes: 5 }));
    for (let step = 0; step < 5; step++) await advanceVirtual(scheduler, 100);
    return failure;
  }

  it.each([
    [
      'an open breaker',
      TxErrorCode.CircuitOpen,
      (scheduler: VirtualTimeScheduler) => ({
        breaker: new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: 60_000, scheduler }),
      }),
    ],
    [
      'a full limiter queue',
      TxErrorCode.RateLimited,
      (scheduler: VirtualTimeScheduler) => ({
        limiter: tokenBucket({ ratePerSecond: 1, burst: 1, maxQueue: 0, scheduler }),
      }),
    ],
  ])(
    'a retry refused by %s is not an attempt; the failure sent is its cause',
    async (_what, code, config) => {
      const error = await failingCall(config);
      expect(error).toMatchObject({ code, meta: { attempts: 1, status: 'rejected' } });
      expect(fixture.seen).toHaveLength(1);
      expect(error.cause).toMatchObject({
        code: TxErrorCode.ToolError,
        message: expect.stringContaining('TEMPORARY_FAILURE'),
        meta: { attempts: 1 },
      });
    },
  );
});

describe('retryWithPolicy and store outages, over a real MCP server', () => {
  it('fails a call within one commandTimeoutMs when its limiter’s store is down: the default policy does not retry it', async () => {
    const scheduler = new VirtualTimeScheduler();
    const stalled = {
      acquire: () =>
        timer(2_000, scheduler).pipe(
          switchMap(() => throwError(() => storeUnavailable('Rate limiter', new Error('did not answer')))),
        ),
    };
    fixture = await connectFixture({ config: { scheduler, limiter: stalled } });
    let settled = false;
    const failure = expectFailure(fixture.tx.call('counter', { key: 'k' })).finally(() => {
      settled = true;
    });
    await advanceVirtual(scheduler, 2_000);
    expect(settled).toBe(true);
    expect(await failure).toMatchObject({
      code: TxErrorCode.StoreUnavailable,
      meta: { attempts: 0, status: 'failed' },
    });
    expect(fixture.seen).toHaveLength(0);
  });

  it('retries the MCP_TX_STORE_UNAVAILABLE a txTool server answers when its own store failed, by default', async () => {
    const memory = memoryIdempotencyStore();
    let failures = 1;
    const flaky: IdempotencyStore = {
      begin: async (...args) => {
        if (failures-- > 0)
          throw new TxError(TxErrorCode.StoreUnavailable, 'store down', { retryable: true });
        return memory.begin(...args);
      },
      complete: (...args) => memory.complete(...args),
      release: (...args) => memory.release(...args),
    };
    let charges = 0;
    fixture = await connectFixture({
      config: { retry: quick },
      register: (server) =>
        server.registerTool(
          'charge',
          { inputSchema: { cents: z.number() } },
          txTool(
            async () => {
              charges++;
              return { content: [{ type: 'text', text: 'charged' }] };
            },
            { tool: 'charge', store: flaky },
          ),
        ),
    });
    const result = await fixture.tx.call('charge', { cents: 5 }, { idempotencyKey: 'c1' });
    expect(result.meta).toMatchObject({ status: 'completed', attempts: 2 });
    expect(charges).toBe(1);
  });
});
