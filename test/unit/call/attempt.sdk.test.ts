import { firstValueFrom, lastValueFrom, map, toArray } from 'rxjs';
import { validate as isUuid, version as uuidVersion } from 'uuid';
import { afterEach, describe, expect, it } from 'vitest';
import { TxCall, TxErrorCode } from '../../../src/index.js';
import { cancellations, connectFixture, expectFailure, type Fixture, until } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

/** One bare attempt, as a Promise. */
const attempt = (...args: Parameters<Fixture['tx']['attempt$']>) =>
  firstValueFrom(fixture.tx.attempt$(...args));

describe('attempt$: one attempt of a tool call', () => {
  it('emits one TxResult with ack, processed, attempts 1, a v7 request id and data parsed from JSON text', async () => {
    fixture = await connectFixture();
    const results = await lastValueFrom(fixture.tx.attempt$('echo', { value: { n: 1 } }).pipe(toArray()));
    expect(results).toHaveLength(1);
    const { data, meta, result } = results[0] as (typeof results)[0];
    expect(data).toEqual({ value: { n: 1 } });
    expect(result.isError).toBeFalsy();
    expect(meta).toMatchObject({
      version: '0.1.0',
      tool: 'echo',
      ack: true,
      processed: true,
      duplicate: false,
      attempts: 1,
      status: 'completed',
      serverSupportsTx: true,
    });
    expect(isUuid(meta.requestId) && uuidVersion(meta.requestId)).toBe(7);
    expect(Object.isFrozen(meta) && Object.isFrozen(results[0])).toBe(true);
    expect(meta.durationMs).toBeGreaterThanOrEqual(0);
    expect(Number.isNaN(Date.parse(meta.startedAt))).toBe(false);
  });

  it('takes data from structuredContent, else keeps plain text as text', async () => {
    fixture = await connectFixture();
    expect((await fixture.tx.call('structured', { n: 21 })).data).toEqual({ doubled: 42 });
    expect((await fixture.tx.call('greet', { name: 'Ada' })).data).toBe('Hello, Ada!');
  });

  it('parses short text at once and long text when data is first read; data is an own enumerable property either way', async () => {
    fixture = await connectFixture();
    const short = await fixture.tx.call('echo', { value: 1 });
    const long = await fixture.tx.call('echo', { value: 'x'.repeat(500) });
    expect(Object.getOwnPropertyDescriptor(short, 'data')).toMatchObject({
      value: { value: 1 },
      enumerable: true,
    });
    const deferred = Object.getOwnPropertyDescriptor(long, 'data');
    expect(deferred?.get).toBeTypeOf('function');
    expect(deferred?.enumerable).toBe(true);
    expect(long.data).toEqual({ value: 'x'.repeat(500) });
    expect(long.data).toBe(long.data);
    for (const result of [short, long]) {
      expect(Object.isFrozen(result)).toBe(true);
      expect({ ...result }.data).toEqual(result.data);
      expect(JSON.parse(JSON.stringify(result)).data).toEqual(result.data);
    }
  });

  it('sends _meta.mcp_tx with the snake_case wire fields when the server advertises MCP-Tx', async () => {
    fixture = await connectFixture();
    expect(fixture.tx.serverSupportsTx).toBe(true);
    const { meta } = await fixture.tx.call(
      'echo',
      {},
      { idempotencyKey: 'order-1', transactionId: 'tx-9', correlationId: 'corr-3', timeoutMs: 4_000 },
    );
    const wire = fixture.seen[0]?.meta?.mcp_tx as Record<string, unknown>;
    expect(wire).toEqual({
      version: '0.1.0',
      request_id: meta.requestId,
      transaction_id: 'tx-9',
      idempotency_key: 'order-1',
      correlation_id: 'corr-3',
      expect_ack: true,
      retry_count: 0,
      timeout_ms: 4_000,
      timestamp: expect.any(String),
    });
    expect(Number.isNaN(Date.parse(wire.timestamp as string))).toBe(false);
    expect(meta).toMatchObject({ idempotencyKey: 'order-1', transactionId: 'tx-9', correlationId: 'corr-3' });
  });

  it('falls back to plain MCP when the server does not advertise MCP-Tx', async () => {
    fixture = await connectFixture({ serverTx: false });
    expect(fixture.tx.serverSupportsTx).toBe(false);
    const { data, meta } = await fixture.tx.call('echo', { value: 2 }, { idempotencyKey: 'k' });
    expect(data).toEqual({ value: 2 });
    expect(fixture.seen[0]?.meta?.mcp_tx).toBeUndefined();
    expect(meta).toMatchObject({ ack: true, processed: true, duplicate: false, serverSupportsTx: false });
  });

  it('re-sends with the same request_id and retry_count + 1 when the same TxCall is resubscribed', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('echo', {});
    const first = await firstValueFrom(call);
    const second = await firstValueFrom(call);
    const wires = fixture.seen.map((seen) => seen.meta?.mcp_tx as Record<string, unknown>);
    expect(wires.map((wire) => wire.request_id)).toEqual([call.request.requestId, call.request.requestId]);
    expect(wires.map((wire) => wire.retry_count)).toEqual([0, 1]);
    expect([first.meta.attempts, second.meta.attempts]).toEqual([1, 2]);
    expect(second.meta.startedAt).toBe(first.meta.startedAt);
  });

  it('keeps the request through plain RxJS operators applied with pipe', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('echo', { value: 'x' });
    const piped = call.pipe(map((result) => result));
    expect(piped).toBeInstanceOf(TxCall);
    expect((piped as unknown as TxCall).request).toBe(call.request);
  });

  it('cancels on the wire when unsubscribed mid-call: the handler signal aborts', async () => {
    fixture = await connectFixture();
    const subscription = fixture.tx.attempt$('slow', { ms: 5_000 }).subscribe();
    await until(() => fixture.seen.length === 1);
    subscription.unsubscribe();
    await until(() => fixture.aborted.length === 1);
    expect(cancellations(fixture.received)).toHaveLength(1);
    expect(fixture.tx.activeRequests.size).toBe(0);
  });

  it('never sends a cancel for a call that completed', async () => {
    fixture = await connectFixture();
    const subscription = fixture.tx.attempt$('echo', {}).subscribe();
    await until(() => subscription.closed);
    subscription.unsubscribe();
    await fixture.tx.call('echo', {});
    expect(cancellations(fixture.received)).toHaveLength(0);
  });

  it('ends as MCP_TX_CANCELLED and cancels on the wire when the caller aborts its signal', async () => {
    fixture = await connectFixture();
    const controller = new AbortController();
    const pending = expectFailure(fixture.tx.call('slow', { ms: 5_000 }, { signal: controller.signal }));
    await until(() => fixture.seen.length === 1);
    controller.abort();
    const error = await pending;
    expect(error).toMatchObject({ code: TxErrorCode.Cancelled, retryable: false });
    expect(error.meta?.status).toBe('cancelled');
    await until(() => fixture.aborted.length === 1);

    const sent = fixture.seen.length;
    expect((await expectFailure(fixture.tx.call('echo', {}, { signal: controller.signal }))).code).toBe(
      TxErrorCode.Cancelled,
    );
    expect(fixture.seen.length).toBe(sent);
  });
});

describe('attempt$: classifying failures', () => {
  it('a handler that throws → MCP_TX_TOOL_ERROR, not retryable unless the text has a retryable marker', async () => {
    fixture = await connectFixture();
    const plain = await expectFailure(attempt('boom', { message: 'disk full' }));
    expect(plain).toMatchObject({ code: TxErrorCode.ToolError, retryable: false, message: 'disk full' });
    expect(plain.meta).toMatchObject({ status: 'failed', ack: true, processed: false, attempts: 1 });
    expect(plain.meta?.errorCode).toBe(TxErrorCode.ToolError);

    const transient = await expectFailure(attempt('boom', { message: 'TEMPORARY_FAILURE: try later' }));
    expect(transient).toMatchObject({ code: TxErrorCode.ToolError, retryable: true });
  });

  it('an unknown tool and invalid arguments → MCP_TX_PROTOCOL_ERROR, not retryable', async () => {
    fixture = await connectFixture();
    const unknown = await expectFailure(attempt('no_such_tool', {}));
    expect(unknown).toMatchObject({ code: TxErrorCode.ProtocolError, retryable: false });
    expect(unknown.message).toContain('no_such_tool');
    const invalid = await expectFailure(attempt('greet', { name: 42 }));
    expect(invalid).toMatchObject({ code: TxErrorCode.ProtocolError, retryable: false });
  });

  it('a timeout → MCP_TX_TIMEOUT, retryable and ambiguous, and the server is told to cancel', async () => {
    fixture = await connectFixture();
    const error = await expectFailure(attempt('slow', { ms: 5_000 }, { timeoutMs: 30 }));
    expect(error).toMatchObject({ code: TxErrorCode.Timeout, retryable: true, ambiguous: true });
    expect(error.meta).toMatchObject({ status: 'timeout', ack: false, attempts: 1 });
    await until(() => fixture.aborted.length === 1);
  });

  it('a closed client → MCP_TX_NETWORK_ERROR, retryable and not ambiguous (nothing was sent)', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.attempt$('echo', {});
    await fixture.client.close();
    const error = await expectFailure(firstValueFrom(call));
    expect(error).toMatchObject({ code: TxErrorCode.NetworkError, retryable: true, ambiguous: false });
  });

  it('a connection lost mid-call → MCP_TX_NETWORK_ERROR, retryable and ambiguous', async () => {
    fixture = await connectFixture();
    const pending = expectFailure(attempt('slow', { ms: 5_000 }));
    await until(() => fixture.seen.length === 1);
    await fixture.server.close();
    expect(await pending).toMatchObject({ code: TxErrorCode.NetworkError, retryable: true, ambiguous: true });
  });

  it('redacts secrets and home paths in error messages', async () => {
    fixture = await connectFixture();
    const error = await expectFailure(
      attempt('boom', {
        message: 'login failed: password=hunter2 api_key: sk-abcdefghijklmnop1234 in /home/alice/app.js',
      }),
    );
    expect(error.message).not.toContain('hunter2');
    expect(error.message).not.toContain('sk-abcdefghijklmnop1234');
    expect(error.message).not.toContain('alice');
    expect(error.message).toContain('[REDACTED]');
    expect(error.meta?.errorMessage).toBe(error.message);
  });
});
