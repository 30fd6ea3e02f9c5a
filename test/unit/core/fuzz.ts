import fc, { type Parameters } from 'fast-check';

/** The seed of every property in `npm test`, so that a run is repeatable. */
export const FUZZ_SEED = 20_240_607;

/**
 * fast-check parameters for a property at a boundary: in `npm test`, `numRuns` runs from the fixed
 * {@link FUZZ_SEED}; `npm run fuzz` sets `FUZZ_FACTOR` (e.g. 100) to run that many times more, from
 * a fresh seed each time. `FUZZ_SEED=<n>` replays a seed (fast-check prints the seed and path of a
 * failure: `FUZZ_SEED=<seed> npx vitest run <file>` runs it again).
 *
 * @example
 * fc.assert(fc.property(message, (text) => check(text)), fuzz(200));
 */
export function fuzz<T>(numRuns: number, extra: Parameters<T> = {}): Parameters<T> {
  const factor = positive(process.env.FUZZ_FACTOR) ?? 1;
  const seed =
    integer(process.env.FUZZ_SEED) ?? (factor > 1 ? Date.now() ^ (Math.random() * 2 ** 31) : FUZZ_SEED);
  return { ...extra, seed, numRuns: Math.ceil(numRuns * factor) };
}

function positive(value: string | undefined): number | undefined {
  const number = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(number) && number > 0 ? number : undefined;
}

function integer(value: string | undefined): number | undefined {
  const number = Number(value);
  return value !== undefined && value !== '' && Number.isSafeInteger(number) ? number : undefined;
}

/**
 * Any value an option may be given by mistake or on purpose: nothing, booleans, numbers of every
 * kind (negative, fractional, huge, NaN, ±Infinity), short strings, a function, an object, an array.
 *
 * @example
 * fc.record({ ratePerSecond: optionValue, burst: optionValue }, { requiredKeys: [] });
 */
export const optionValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -10, max: 100 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    1,
    2_147_483_647,
    2_147_483_648,
    Number.MAX_SAFE_INTEGER,
    Infinity,
    -Infinity,
    Number.NaN,
  ),
  fc.string({ maxLength: 4 }),
  fc.constant(() => true),
  fc.constant({}),
  fc.constant([]),
);
