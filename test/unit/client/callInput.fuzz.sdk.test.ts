import fc from 'fast-check';
import { lastValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTxError, type TxCall, TxErrorCode } from '../../../src/index.js';
import { connectFixture, type Fixture } from '../../support/fixture.js';
import { fuzz, optionValue } from '../core/fuzz.js';

/** The smallest bound there is, so that arguments near it are cheap: 64 KiB less the 8 KiB envelope. */
const MAX_MESSAGE_BYTES = 65_536;
const ARGS_ROOM = MAX_MESSAGE_BYTES - 8 * 1024;

let fixture: Fixture;
beforeAll(async () => {
  fixture = await connectFixture({
    config: { dedupe: false, retry: false, maxMessageBytes: MAX_MESSAGE_BYTES },
  });
});
afterAll(() => fixture.close());

/** How many `tools/call` requests the real McpServer received. */
const sends = () =>
  fixture.received.filter((message) => 'method' in message && message.method === 'tools/call').length;

type Outcome = { kind: 'completed' } | { kind: 'failed'; code: unknown; field?: string; error: unknown };

/** Makes the call (which must not throw) and runs it; says how it ended and how many requests it sent. */
async function run(args: unknown, options: unknown): Promise<{ outcome: Outcome; sent: number }> {
  const before = sends();
  let call: TxCall;
  try {
    // biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
    call = (fixture.tx.call$ as any)('echo', args, options);
  } catch (error) {
    throw new Error(`call$ threw instead of returning a failing call: ${String(error)}`);
  }
  let outcome: Outcome;
  try {
    await lastValueFrom(call);
    outcome = { kind: 'completed' };
  } catch (error) {
    outcome = isTxError(error)
      ? { kind: 'failed', code: error.code, field: error.field, error }
      : { kind: 'failed', code: 'not a TxError', error };
  }
  return { outcome, sent: sends() - before };
}

/**
 * A value made only when the property runs, printed as `label`: fast-check prints a counterexample
 * by reading it, which a throwing getter or a trapping proxy would not survive.
 */
interface Lazy {
  readonly make: () => unknown;
  [fc.toStringMethod](): string;
}
const lazy = (label: string, make: () => unknown): Lazy => ({ make, [fc.toStringMethod]: () => label });
const materialize = (value: unknown) =>
  typeof value === 'object' && value !== null && fc.toStringMethod in value ? (value as Lazy).make() : value;

const throwingGetter = (key: string) =>
  Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new Error(`reading ${key}`);
    },
  });
const revokedProxy = () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};
const trapEverything = () =>
  new Proxy(
    {},
    {
      get: () => {
        throw new Error('get trap');
      },
      ownKeys: () => {
        throw new Error('ownKeys trap');
      },
      getOwnPropertyDescriptor: () => {
        throw new Error('descriptor trap');
      },
      getPrototypeOf: () => {
        throw new Error('prototype trap');
      },
    },
  );

const KNOWN_OPTIONS = [
  'idempotencyKey',
  'timeoutMs',
  'retry',
  'transactionId',
  'correlationId',
  'signal',
  'onProgress',
  'resetTimeoutOnProgress',
  'limiter',
  'breaker',
  'dedupe',
  'monitor',
  'record',
  'trace',
] as const;

/** Known options given anything (valid by chance or not). */
const anyKnownOptions = fc.record(Object.fromEntries(KNOWN_OPTIONS.map((key) => [key, optionValue])), {
  requiredKeys: [],
});

/** One thing that makes any options object invalid (a throwing getter only when made). */
const poison: fc.Arbitrary<Record<string, unknown> | Lazy> = fc.oneof(
  fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((key) => !(KNOWN_OPTIONS as readonly string[]).includes(key))
    .map((key) => ({ [key]: 1 })),
  fc.constant(JSON.parse('{"__proto__":{"timeoutMs":5}}') as Record<string, unknown>),
  fc
    .constantFrom(...KNOWN_OPTIONS)
    .map((key) => lazy(`getter of ${key} that throws`, () => throwingGetter(key))),
  fc
    .oneof(fc.string(), fc.constant(Number.NaN), fc.integer({ max: 0 }), fc.double({ min: 0.1, max: 0.9 }))
    .map((timeoutMs) => ({ timeoutMs })),
  fc
    .tuple(fc.string({ maxLength: 8 }), fc.integer({ min: 0, max: 0x1f }), fc.string({ maxLength: 8 }))
    .map(([head, control, tail]) => ({ idempotencyKey: `${head}${String.fromCharCode(control)}${tail}` })),
  fc.constantFrom<Record<string, unknown>>(
    { idempotencyKey: '' },
    { idempotencyKey: 'k'.repeat(256) },
    { correlationId: 'a\u007fb' },
    { signal: {} },
    { onProgress: 'log' },
    { limiter: true },
    { retry: { maxAttempts: 0 } },
    { retry: 'sometimes' },
    { resetTimeoutOnProgress: 1 },
  ),
);

/** `known` with `bad` on top, made when the property runs (getters kept as getters, not read). */
const withPoison = (prototype: object | null, known: object, bad: Record<string, unknown> | Lazy) =>
  lazy(`${fc.stringify(known)} + ${fc.stringify(bad)}${prototype === null ? ' (null prototype)' : ''}`, () =>
    Object.defineProperties(
      Object.assign(Object.create(prototype), known),
      Object.getOwnPropertyDescriptors(materialize(bad) as object),
    ),
  );

/** Options that cannot be valid: known keys with anything, plus one poison; or not an options object at all. */
const badOptions: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(anyKnownOptions, poison).map(([known, bad]) => withPoison(null, known, bad)),
  fc.tuple(anyKnownOptions, poison).map(([known, bad]) => withPoison(Object.prototype, known, bad)),
  fc.oneof(
    fc.constant(null),
    fc.string(),
    fc.integer(),
    fc.constant([]),
    fc.constant(() => ({})),
    fc.constant(new Map()),
    fc.constant(Symbol('options')),
  ),
  fc.constantFrom(
    lazy('a revoked proxy', revokedProxy),
    lazy('a proxy whose every trap throws', trapEverything),
  ),
);

/** Arguments of every kind: JSON, and what JSON cannot carry (nested anywhere). */
const anyValue = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withNullPrototype: true,
  withBoxedValues: true,
  withSparseArray: true,
  withObjectString: true,
});
const cyclic = () => {
  const args: Record<string, unknown> = { list: [] };
  (args.list as unknown[]).push(args);
  return args;
};
const nested = (depth: number) => {
  let value: unknown = 'leaf';
  for (let level = 0; level < depth; level++) value = level % 2 === 0 ? { x: value } : [value];
  return value as Record<string, unknown>;
};
class Point {
  constructor(readonly x = 1) {}
}
const anyArgs: fc.Arbitrary<unknown> = fc.oneof(
  anyValue,
  anyValue.map((value) => ({ value })),
  fc.dictionary(fc.string({ maxLength: 6 }), anyValue, { maxKeys: 4 }),
  fc.jsonValue().map((value) => ({ value })),
  fc.integer({ min: 58, max: 70 }).map(nested),
  fc.constantFrom(
    lazy('a cycle', cyclic),
    lazy('NaN', () => ({ value: Number.NaN })),
    lazy('-Infinity', () => ({ value: [1, -Infinity] })),
    lazy('a BigInt', () => ({ value: 10n })),
    lazy('a function', () => ({ value: () => 1 })),
    lazy('a symbol', () => ({ value: Symbol('s') })),
    lazy('a class instance inside', () => ({ value: new Point() })),
    lazy('a class instance', () => new Point()),
    lazy('a getter that throws inside', () => ({ value: throwingGetter('deep') })),
    lazy('a getter that throws', () => throwingGetter('top')),
    lazy('a revoked proxy', revokedProxy),
    lazy('a revoked proxy inside', () => ({ value: revokedProxy() })),
    lazy('a proxy whose every trap throws', trapEverything),
  ),
);

describe('call$ input at the boundary (property, real McpServer)', () => {
  it('options that cannot be valid: MCP_TX_VALIDATION naming options, never a throw, nothing sent', async () => {
    await fc.assert(
      fc.asyncProperty(badOptions, async (options) => {
        const { outcome, sent } = await run({ value: 1 }, materialize(options));
        expect(outcome).toMatchObject({ kind: 'failed', code: TxErrorCode.Validation });
        expect(outcome.kind === 'failed' && outcome.field?.startsWith('options')).toBe(true);
        expect(sent).toBe(0);
      }),
      fuzz(200),
    );
  });

  it('any arguments: sent once and completed, or MCP_TX_VALIDATION naming args with nothing sent', async () => {
    await fc.assert(
      fc.asyncProperty(anyArgs, async (args) => {
        const { outcome, sent } = await run(materialize(args), undefined);
        if (outcome.kind === 'completed') {
          expect(sent).toBe(1);
          return;
        }
        expect(outcome).toMatchObject({ code: TxErrorCode.Validation });
        expect(outcome.field?.startsWith('args')).toBe(true);
        expect(sent).toBe(0);
      }),
      fuzz(300),
    );
  });

  it('arguments near maxMessageBytes: sent exactly when their UTF-8 JSON fits, else refused naming the size', async () => {
    const text = fc.string({
      unit: fc.constantFrom('a', 'é', '€', '😀', '"', '\n'),
      minLength: 0,
      maxLength: 64,
    });
    const nearLimit = fc
      .tuple(fc.integer({ min: ARGS_ROOM - 200, max: ARGS_ROOM + 200 }), text)
      .map(([size, tail]) => ({ pad: 'x'.repeat(Math.max(0, size - 64)), tail }));
    await fc.assert(
      fc.asyncProperty(nearLimit, async (args) => {
        const bytes = Buffer.byteLength(JSON.stringify(args), 'utf8');
        const { outcome, sent } = await run(args, undefined);
        if (bytes <= ARGS_ROOM) {
          expect(outcome).toEqual({ kind: 'completed' });
          expect(sent).toBe(1);
        } else {
          expect(outcome).toMatchObject({ kind: 'failed', code: TxErrorCode.Validation, field: 'args' });
          expect(String((outcome as { error: Error }).error.message)).toContain(`are ${bytes} bytes`);
          expect(sent).toBe(0);
        }
      }),
      fuzz(100),
    );
  });
});
