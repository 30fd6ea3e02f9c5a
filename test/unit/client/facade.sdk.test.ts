import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthMonitor, MemoryEventStore, TxError, TxErrorCode, tokenBucket } from '../../../src/index.js';
import { cancellations, connectFixture, expectFailure, type Fixture, until } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

const wireOf = (index: number) => fixture.seen[index]?.meta?.mcp_tx as Record<string, unknown>;

describe('createMcpTx facade', () => {
  it('applies the config timeout, then the tool policy, then the call option', async () => {
    fixture = await connectFixture({ config: { timeoutMs: 7_000 } });
    await fixture.tx.call('echo', {});
    fixture.tx.tool('echo', { timeoutMs: 3_000 });
    await fixture.tx.call('echo', {});
    await fixture.tx.call('echo', {}, { timeoutMs: 1_000 });
    expect([0, 1, 2].map((index) => wireOf(index).timeout_ms)).toEqual([7_000, 3_000, 1_000]);
  });

  it('uses the default 30 s timeout when nothing is configured', async () => {
    fixture = await connectFixture();
    await fixture.tx.call('echo', {});
    expect(wireOf(0).timeout_ms).toBe(30_000);
  });

  it('derives the idempotency key from the tool policy; an explicit key wins', async () => {
    fixture = await connectFixture();
    const tx = fixture.tx.tool('echo', { idempotencyKey: (args) => `echo-${String(args.value)}` });
    expect(tx).toBe(fixture.tx);
    expect(Object.keys(fixture.tx.tools())).toEqual(['echo']);
    const derived = await fixture.tx.call('echo', { value: 5 });
    await fixture.tx.call('echo', { value: 5 }, { idempotencyKey: 'mine' });
    expect(derived.meta.idempotencyKey).toBe('echo-5');
    expect([wireOf(0).idempotency_key, wireOf(1).idempotency_key]).toEqual(['echo-5', 'mine']);
  });

  it('takes per-tool policies from the config too', async () => {
    fixture = await connectFixture({ config: { tools: { echo: { timeoutMs: 2_500 } } } });
    await fixture.tx.call('echo', {});
    expect(wireOf(0).timeout_ms).toBe(2_500);
    expect(fixture.tx.tools().echo?.timeoutMs).toBe(2_500);
  });

  it('gives every logical call its own request id', async () => {
    fixture = await connectFixture();
    const ids = await Promise.all(
      [1, 2, 3].map(() => fixture.tx.call('echo', {}).then((r) => r.meta.requestId)),
    );
    expect(new Set(ids).size).toBe(3);
  });

  it('reports progress to onProgress', async () => {
    fixture = await connectFixture();
    const seen: number[] = [];
    await fixture.tx.call(
      'progress',
      { steps: 3 },
      { onProgress: (progress) => seen.push(progress.progress) },
    );
    expect(seen).toEqual([1, 2, 3]);
  });

  it('lists the calls in flight in activeRequests', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.call$('slow', { ms: 50 });
    const done = lastValueFrom(call.pipe(toArray()));
    expect([...fixture.tx.activeRequests.keys()]).toEqual([call.request.requestId]);
    expect(fixture.tx.activeRequests.get(call.request.requestId)?.name).toBe('slow');
    await done;
    expect(fixture.tx.activeRequests.size).toBe(0);
  });

  it('close() waits for calls in flight, then closes the client and refuses new calls', async () => {
    fixture = await connectFixture();
    const inFlight = fixture.tx.call('slow', { ms: 30 });
    await until(() => fixture.seen.length === 1);
    await fixture.tx.close();
    await expect(inFlight).resolves.toMatchObject({ data: 'done' });
    const refused = await fixture.tx.call('echo', {}).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TxError);
    expect((refused as TxError).code).toBe(TxErrorCode.Cancelled);
    expect(fixture.seen).toHaveLength(1);
    expect(cancellations(fixture.received)).toHaveLength(0);
  });

  it('close() cancels what is still running after its bound, on the wire too', async () => {
    fixture = await connectFixture();
    const inFlight = fixture.tx.call('slow', { ms: 10_000 }).catch((error: unknown) => error);
    await until(() => fixture.seen.length === 1);
    await fixture.tx.close({ timeoutMs: 20 });
    const error = (await inFlight) as TxError;
    expect(error).toBeInstanceOf(TxError);
    expect(error.code).toBe(TxErrorCode.Cancelled);
    expect(error.meta).toMatchObject({ status: 'cancelled', attempts: 1, tool: 'slow' });
    expect(fixture.tx.activeRequests.size).toBe(0);
    await until(() => fixture.aborted.length === 1);
    const refused = await expectFailure(fixture.tx.call('echo', {}));
    expect(refused.meta).toMatchObject({ status: 'cancelled', attempts: 0, tool: 'echo' });
  });

  it('close() cancellations reach record and monitor: the log holds the failure', async () => {
    const events = new MemoryEventStore();
    const health = new HealthMonitor();
    fixture = await connectFixture({ config: { events, monitor: health } });
    const inFlight = expectFailure(fixture.tx.call('slow', { ms: 10_000 }));
    await until(() => fixture.seen.length === 1);
    await fixture.tx.close({ timeoutMs: 20 });
    expect((await inFlight).code).toBe(TxErrorCode.Cancelled);
    const logged = await lastValueFrom(events.read$().pipe(toArray()));
    expect(logged.map((event) => event.type)).toEqual(['ToolCallRequested', 'ToolCallFailed']);
  });
});

describe('a call whose signal aborts', () => {
  it('leaves the throttle queue at once, freeing its place, and counts no attempt', async () => {
    const limiter = tokenBucket({ ratePerSecond: 0.01, burst: 1 });
    fixture = await connectFixture({ config: { limiter } });
    await fixture.tx.call('echo', {}); // takes the only token: the next call waits 100 s
    const controller = new AbortController();
    const queued = expectFailure(fixture.tx.call('echo', {}, { signal: controller.signal }));
    await until(() => limiter.queued === 1);
    controller.abort();
    const error = await queued;
    expect(error.code).toBe(TxErrorCode.Cancelled);
    expect(error.meta).toMatchObject({ status: 'cancelled', attempts: 0 });
    expect(limiter.queued).toBe(0);
    expect(fixture.tx.activeRequests.size).toBe(0);
    expect(fixture.seen).toHaveLength(1);
  });

  it('stops waiting out a retry backoff at once', async () => {
    fixture = await connectFixture({ config: { retry: { baseDelayMs: 30_000, jitter: false } } });
    const controller = new AbortController();
    const call = expectFailure(
      fixture.tx.call('flaky', { key: 'b', failTimes: 5 }, { signal: controller.signal }),
    );
    await until(() => fixture.seen.length === 1);
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    const error = await call;
    expect(error.code).toBe(TxErrorCode.Cancelled);
    expect(error.meta?.attempts).toBe(1);
    expect(fixture.seen).toHaveLength(1);
  });

  it('fails at once, sending nothing and counting no attempt, when it was aborted before', async () => {
    fixture = await connectFixture();
    const error = await expectFailure(
      firstValueFrom(fixture.tx.attempt$('echo', {}, { signal: AbortSignal.abort() })),
    );
    expect(error.meta).toMatchObject({ status: 'cancelled', attempts: 0 });
    expect(fixture.seen).toHaveLength(0);
  });
});
