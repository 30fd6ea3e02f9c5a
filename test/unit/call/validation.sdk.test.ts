import { catchError, from, lastValueFrom, mergeMap, of, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMcpTx, TxError, TxErrorCode, type TxResult } from '../../../src/index.js';
import { connectFixture, expectFailure, type Fixture, wireOf } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

const cyclic: Record<string, unknown> = { a: 1 };
cyclic.self = cyclic;
const deep: Record<string, unknown> = {};
let level = deep;
for (let index = 0; index < 10_000; index++) {
  const next: Record<string, unknown> = {};
  level.x = next;
  level = next;
}
const throwingGetter = Object.defineProperty({}, 'secret', {
  enumerable: true,
  get() {
    throw new Error('no access');
  },
});

// [what, name, args, options, field named in the error]
const badInputs: Array<[string, unknown, unknown, unknown, string]> = [
  ['empty tool name', '', {}, undefined, 'name'],
  ['tool name with a space', 'get weather', {}, undefined, 'name'],
  ['tool name with a control character', 'echo\u0000', {}, undefined, 'name'],
  ['non-string tool name', 42, {}, undefined, 'name'],
  ['over-long tool name', 'x'.repeat(257), {}, undefined, 'name'],
  ['array args', 'echo', [1, 2], undefined, 'args'],
  ['string args', 'echo', 'hello', undefined, 'args'],
  ['null args', 'echo', null, undefined, 'args'],
  ['class instance args', 'echo', new Map(), undefined, 'args'],
  ['args with a cycle', 'echo', cyclic, undefined, 'args.self'],
  ['args with a BigInt', 'echo', { value: 10n }, undefined, 'args.value'],
  ['args with a function', 'echo', { value: () => 1 }, undefined, 'args.value'],
  [
    'args with NaN deep inside',
    'echo',
    { value: { list: [1, Number.NaN] } },
    undefined,
    'args.value.list[1]',
  ],
  ['args with a Date', 'echo', { value: new Date() }, undefined, 'args.value'],
  ['args nested 10 000 levels deep', 'echo', deep, undefined, `args${'.x'.repeat(64)}`],
  ['args with a getter that throws', 'echo', throwingGetter, undefined, 'args'],
  ['negative timeout', 'echo', {}, { timeoutMs: -5 }, 'options.timeoutMs'],
  ['zero timeout', 'echo', {}, { timeoutMs: 0 }, 'options.timeoutMs'],
  ['fractional timeout', 'echo', {}, { timeoutMs: 1.5 }, 'options.timeoutMs'],
  ['empty idempotency key', 'echo', {}, { idempotencyKey: '' }, 'options.idempotencyKey'],
  [
    'idempotency key over 255 characters',
    'echo',
    {},
    { idempotencyKey: 'k'.repeat(256) },
    'options.idempotencyKey',
  ],
  ['idempotency key with a newline', 'echo', {}, { idempotencyKey: 'order\n42' }, 'options.idempotencyKey'],
  [
    'idempotency key with a C1 control',
    'echo',
    {},
    { idempotencyKey: 'order\u008542' },
    'options.idempotencyKey',
  ],
  ['transaction id with a NUL', 'echo', {}, { transactionId: 'wf\u00001' }, 'options.transactionId'],
  ['args over maxMessageBytes (4 MiB)', 'echo', { blob: 'x'.repeat(4 * 2 ** 20) }, undefined, 'args'],
  ['unknown option', 'echo', {}, { timeout: 5 }, 'options.timeout'],
  ['signal that is not an AbortSignal', 'echo', {}, { signal: {} }, 'options.signal'],
  ['retry policy out of bounds', 'echo', {}, { retry: { maxAttempts: 0 } }, 'options.retry.maxAttempts'],
  [
    'retry maxDelayMs under baseDelayMs',
    'echo',
    {},
    { retry: { baseDelayMs: 10, maxDelayMs: 5 } },
    'options.retry.maxDelayMs',
  ],
];

describe('bad input never reaches the wire', () => {
  it.each(badInputs)('%s → MCP_TX_VALIDATION, nothing sent', async (_what, name, args, options, field) => {
    fixture = await connectFixture();
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    const call = (fixture.tx.call$ as any)(name, args, options);
    const error = await expectFailure(lastValueFrom(call));
    expect(error.code).toBe(TxErrorCode.Validation);
    expect(error.retryable).toBe(false);
    expect(error.field).toBe(field);
    expect(error.message).toContain(field);
    expect(error.meta).toMatchObject({ status: 'rejected', attempts: 0, ack: false });
    // biome-ignore lint/suspicious/noExplicitAny: as above
    const attempt = (fixture.tx.attempt$ as any)(name, args, options);
    expect((await expectFailure(lastValueFrom(attempt))).code).toBe(TxErrorCode.Validation);
    expect(fixture.seen).toHaveLength(0);
  });

  it('does not throw at call time, so one bad call does not break the others in a pipeline', async () => {
    fixture = await connectFixture();
    const inputs = [{ value: 1 }, { value: 10n }, { value: 3 }] as unknown as Array<Record<string, unknown>>;
    const outcomes = await lastValueFrom(
      from(inputs).pipe(
        mergeMap((args) =>
          fixture.tx.call$('echo', args).pipe(catchError((error: TxError) => of<TxResult | TxError>(error))),
        ),
        toArray(),
      ),
    );
    expect(outcomes.filter((outcome) => outcome instanceof TxError).map((e) => (e as TxError).code)).toEqual([
      TxErrorCode.Validation,
    ]);
    expect(fixture.seen.map((seen) => seen.args.value).sort()).toEqual([1, 3]);
  });

  it('rejects a bad config at createMcpTx, naming the field', async () => {
    fixture = await connectFixture();
    const attempts: Array<[unknown, string]> = [
      [{ retry: { maxAttempts: 0 } }, 'config.retry.maxAttempts'],
      [{ retry: { multiplier: 0.5 } }, 'config.retry.multiplier'],
      [{ retry: { jitter: 'sometimes' } }, 'config.retry.jitter'],
      [{ timeoutMs: 'soon' }, 'config.timeoutMs'],
      [{ timeout: 5 }, 'config.timeout'],
      [{ tools: { charge: { timeoutMs: -1 } } }, 'config.tools.charge.timeoutMs'],
      [{ maxMessageBytes: 1_000 }, 'config.maxMessageBytes'],
      [{ maxMessageBytes: Number.NaN }, 'config.maxMessageBytes'],
      [{ dedupe: { maxBytes: 1.5 } }, 'config.dedupe.maxBytes'],
    ];
    for (const [config, field] of attempts) {
      // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
      expect(() => createMcpTx(fixture.client, config as any)).toThrowError(
        expect.objectContaining({ code: TxErrorCode.Validation, field }),
      );
    }
    // biome-ignore lint/suspicious/noExplicitAny: as above
    expect(() => createMcpTx({} as any)).toThrowError(expect.objectContaining({ field: 'client' }));
  });

  it('rejects a bad per-tool policy, and a derived idempotency key that is not a valid key', async () => {
    fixture = await connectFixture();
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    expect(() => fixture.tx.tool('echo', { retry: { maxAttempts: -1 } } as any)).toThrowError(
      expect.objectContaining({ field: 'tools.echo.retry.maxAttempts' }),
    );
    fixture.tx.tool('echo', { idempotencyKey: () => '' });
    const error = await expectFailure(fixture.tx.call('echo', {}));
    expect(error).toMatchObject({ code: TxErrorCode.Validation, field: 'idempotencyKey' });
    fixture.tx.tool('echo', {
      idempotencyKey: () => {
        throw new Error('no id');
      },
    });
    expect((await expectFailure(fixture.tx.call('echo', {}))).message).toContain('no id');
    fixture.tx.tool('echo', { idempotencyKey: () => 'order\r\n42' });
    expect(await expectFailure(fixture.tx.call('echo', {}))).toMatchObject({
      field: 'idempotencyKey',
      message: 'Invalid idempotencyKey: must not contain control characters',
    });
    expect(fixture.seen).toHaveLength(0);
  });

  it('accepts a key of any printable characters, spaces and non-ASCII included', async () => {
    fixture = await connectFixture();
    const result = await fixture.tx.call('echo', {}, { idempotencyKey: 'commande n° 42 — 東京' });
    expect(result.meta.status).toBe('completed');
  });

  it('refuses arguments over maxMessageBytes at once, counting UTF-8 bytes, naming args and the size', async () => {
    fixture = await connectFixture();
    const wide = { text: 'é'.repeat(2_200_000) }; // 2.2 M characters, 4.4 MB of UTF-8
    const error = await expectFailure(fixture.tx.call('echo', wide));
    expect(error).toMatchObject({ code: TxErrorCode.Validation, field: 'args', retryable: false });
    expect(error.message).toBe(
      'Invalid args: are 4400011 bytes of JSON (UTF-8), over the 4186112 that maxMessageBytes (4194304) ' +
        'leaves after 8192 for the request envelope: the transport would drop the message',
    );
    const narrow = await fixture.tx.call('echo', { text: 'e'.repeat(2_200_000) }, { dedupe: false });
    expect(narrow.meta.status).toBe('completed');
    expect(fixture.seen).toHaveLength(1);

    const raised = createMcpTx(fixture.client, { maxMessageBytes: 8 * 2 ** 20 });
    expect((await raised.call('echo', wide)).meta.status).toBe('completed');
  });
});

describe('close options', () => {
  it('rejects a timeout that is negative, NaN, fractional or not a number, and closes nothing', async () => {
    fixture = await connectFixture();
    for (const timeoutMs of [-1, Number.NaN, 1.5, Infinity, '10']) {
      // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
      const error = await expectFailure(fixture.tx.close({ timeoutMs } as any));
      expect(error).toMatchObject({ code: TxErrorCode.Validation, field: 'options.timeoutMs' });
    }
    // biome-ignore lint/suspicious/noExplicitAny: as above
    expect(await expectFailure(fixture.tx.close({ timeout: 5 } as any))).toMatchObject({
      field: 'options.timeout',
    });
    expect((await fixture.tx.call('echo', { still: 'open' })).meta.status).toBe('completed');
    await fixture.tx.close({ timeoutMs: 0 });
  });
});

describe('arguments are copied when the call is made', () => {
  it('sends what was checked, whatever the caller changes in its object before subscribing', async () => {
    fixture = await connectFixture();
    const args: Record<string, unknown> = { value: { city: 'Lyon', days: [1, 2] } };
    const call = fixture.tx.call$('echo', args);
    args.value = 10n;
    const result = await lastValueFrom(call);
    expect(result.data).toEqual({ value: { city: 'Lyon', days: [1, 2] } });
    expect(fixture.seen.map((seen) => seen.args)).toEqual([{ value: { city: 'Lyon', days: [1, 2] } }]);
    expect(call.request.args).toEqual({ value: { city: 'Lyon', days: [1, 2] } });
    expect(Object.isFrozen(call.request.args)).toBe(true);
    expect(() => {
      (call.request.args.value as { days: number[] }).days.push(3);
    }).toThrowError(TypeError);
  });

  it('sends the same arguments on every attempt of one call', async () => {
    fixture = await connectFixture({ config: { retry: { baseDelayMs: 2, maxDelayMs: 5, jitter: false } } });
    const args: Record<string, unknown> = { key: 'a', failTimes: 2 };
    const call = fixture.tx.call$('flaky', args);
    call.state.onRetry(({ attempt }) => {
      args.key = `changed-${attempt}`;
      args.failTimes = 0;
    });
    const result = await lastValueFrom(call);
    expect(result.meta.attempts).toBe(3);
    expect(fixture.seen.map((seen) => seen.args)).toEqual([
      { key: 'a', failTimes: 2 },
      { key: 'a', failTimes: 2 },
      { key: 'a', failTimes: 2 },
    ]);
    expect(new Set(fixture.seen.map((seen) => wireOf(seen)?.request_id))).toEqual(
      new Set([call.request.requestId]),
    );
  });
});
