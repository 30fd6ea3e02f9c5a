import type { SchedulerLike } from 'rxjs';
import * as z from 'zod';
import { validationError } from '../core/errors.js';

/** Longest idempotency key, transaction id or correlation id accepted. */
export const MAX_KEY_LENGTH = 255;
/** Longest timeout a Node timer can hold. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** An RxJS scheduler: what every operator or class that waits takes, for virtual time in tests. */
export const SchedulerSchema = z.custom<SchedulerLike>(
  (value) => typeof (value as SchedulerLike | null)?.now === 'function',
  'must be an RxJS scheduler',
);

/** How many calls may wait in a limiter's queue (default: no bound). */
export const MaxQueueSchema = z
  .number()
  .int('must be a whole number')
  .min(0, 'must be at least 0')
  .or(z.literal(Infinity))
  .default(Infinity);

/** A positive whole number of milliseconds. */
export const PositiveMsSchema = z
  .number()
  .int('must be a whole number of milliseconds')
  .positive('must be greater than 0');

/** A function-valued option; `what` names the expected signature in the message. */
export const functionSchema = <T extends (...args: never[]) => unknown>(what: string) =>
  z.custom<T>((value) => typeof value === 'function', { message: `must be a function (${what})` });

/** A wait in ms that may be 0: a whole number from 0 to {@link MAX_TIMEOUT_MS}. */
export const WaitMsSchema = z
  .number({ message: 'must be a number of milliseconds' })
  .int('must be a whole number of milliseconds')
  .min(0, 'must be at least 0')
  .max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS}`);

/** A timeout or period in ms: a whole number from 1 to {@link MAX_TIMEOUT_MS} (what `setTimeout` takes). */
export const TimeoutMsSchema = z
  .number({ message: 'must be a number of milliseconds' })
  .int('must be a whole number of milliseconds')
  .positive('must be greater than 0')
  .max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS}`);

/**
 * An idempotency key, transaction id or correlation id: 1 to {@link MAX_KEY_LENGTH} characters, none
 * a control character (Unicode `Cc`: U+0000–U+001F, U+007F–U+009F), which a header or a log line
 * could not carry. The one rule of a key given in call options, derived by a tool policy or read by
 * the gateway.
 */
export const BoundedIdSchema = z
  .string({ message: 'must be a string' })
  .min(1, 'must not be empty')
  .max(MAX_KEY_LENGTH, `must be at most ${MAX_KEY_LENGTH} characters`)
  .regex(/^\P{Cc}*$/u, 'must not contain control characters');

/** Whether `value` has a method named `method` (how a structural option is recognised). */
export const hasMethod = (value: unknown, method: string) =>
  typeof (value as Record<string, unknown> | null)?.[method] === 'function';

/**
 * Parses `value` with `schema`, or throws a `MCP_TX_VALIDATION` {@link TxError} whose message names
 * the first bad field under `root`.
 *
 * @example
 * const policy = parseOrThrow(PartialRetryPolicySchema, { maxAttempts: 0 }, 'retry');
 * // throws: Invalid retry.maxAttempts: must be at least 1
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const { issue, path } = mostSpecificIssue(parsed.error.issues, []);
  if (issue?.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return throwValidation([root, ...path, key], 'is not a known option');
  }
  return throwValidation([root, ...path], issue?.message ?? 'is invalid');
}

type Issue = z.core.$ZodIssue;

/** The first issue, looking into the branch of a union that got furthest (`false | {…}` options, say). */
function mostSpecificIssue(
  issues: readonly Issue[],
  prefix: readonly string[],
): { issue: Issue | undefined; path: string[] } {
  const issue = issues[0];
  const path = [...prefix, ...(issue?.path.map(String) ?? [])];
  if (issue?.code !== 'invalid_union' || issue.errors.length === 0) return { issue, path };
  const branches = issue.errors.map((branch) => mostSpecificIssue(branch, path));
  return branches.reduce((best, branch) => (branch.path.length > best.path.length ? branch : best), {
    issue,
    path,
  });
}

function throwValidation(path: readonly string[], reason: string): never {
  throw validationError(path.filter((part) => part !== '').join('.'), reason);
}
