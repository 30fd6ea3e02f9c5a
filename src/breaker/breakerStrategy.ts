/**
 * The rules of a breaker, as pure functions of its {@link BreakerSnapshot}, the clock and the
 * options — no timers, no I/O — so that every breaker decides the same way: the in-process
 * `CircuitBreaker` applies them to its own state, and `RedisCircuitBreaker` computes its refusals
 * with them (its Lua scripts apply the same counting rules atomically, across processes, where
 * the shared state lives).
 *
 * The counting rule is consecutive failures: while closed, a success resets the count and
 * `failureThreshold` failures in a row open the breaker. Once `recoveryTimeoutMs` has passed it is
 * half-open: `successThreshold` successful probes close it, one failed probe re-opens it.
 */
import type { BreakerOutcome, BreakerState } from './breaker.js';
import type { BreakerSettings, BreakerSnapshot } from './breakerSchemas.js';

/**
 * The options the rules read.
 *
 * @example
 * const rules: BreakerRules = { failureThreshold: 3, recoveryTimeoutMs: 10_000, successThreshold: 1 };
 */
export type BreakerRules = Pick<
  BreakerSettings,
  'failureThreshold' | 'recoveryTimeoutMs' | 'successThreshold'
>;

/**
 * When a breaker that opened at `openedAt` turns half-open.
 *
 * @example
 * scheduler.schedule(recover, recoveryDueAt(snapshot.openedAt, rules) - scheduler.now());
 */
export function recoveryDueAt(openedAt: number, rules: BreakerRules): number {
  return openedAt + rules.recoveryTimeoutMs;
}

/**
 * How long, in whole ms rounded up, until a breaker that opened at `openedAt` lets a probe
 * through (0 once it may): the `retryAfterMs` of its refusal.
 *
 * @example
 * throw circuitOpenError(retryAfterMs(snapshot.openedAt, rules, now));
 */
export function retryAfterMs(openedAt: number, rules: BreakerRules, now: number): number {
  return Math.max(0, Math.ceil(recoveryDueAt(openedAt, rules) - now));
}

/**
 * The snapshot as of `now`: an open breaker whose recovery time has passed is half-open.
 *
 * @example
 * if (recovered(snapshot, rules, now).state === 'half-open') admitProbe();
 */
export function recovered(snapshot: BreakerSnapshot, rules: BreakerRules, now: number): BreakerSnapshot {
  const due = snapshot.state === 'open' && now >= recoveryDueAt(snapshot.openedAt, rules);
  return due ? enter(snapshot, 'half-open') : snapshot;
}

/**
 * The snapshot after the outcome of a call admitted in its current state (a probe when half-open)
 * ends: a release counts nothing; see the module comment for successes and failures. A failure
 * that opens the breaker records `now` as `openedAt`.
 *
 * @example
 * const next = afterOutcome(snapshot, 'failure', rules, scheduler.now());
 * if (next.state !== snapshot.state) announce(next.state);
 */
export function afterOutcome(
  snapshot: BreakerSnapshot,
  outcome: BreakerOutcome,
  rules: BreakerRules,
  now: number,
): BreakerSnapshot {
  if (outcome === 'success') return afterSuccess(snapshot, rules);
  if (outcome === 'failure') return afterFailure(snapshot, rules, now);
  return snapshot;
}

/** Outside half-open a success clears the failures; with none counted, the snapshot is kept (no copy). */
function afterSuccess(snapshot: BreakerSnapshot, rules: BreakerRules): BreakerSnapshot {
  if (snapshot.state !== 'half-open')
    return snapshot.failures === 0 ? snapshot : { ...snapshot, failures: 0 };
  const successes = snapshot.successes + 1;
  return successes >= rules.successThreshold ? enter(snapshot, 'closed') : { ...snapshot, successes };
}

function afterFailure(snapshot: BreakerSnapshot, rules: BreakerRules, now: number): BreakerSnapshot {
  const failures = snapshot.failures + 1;
  const opens = snapshot.state === 'half-open' || failures >= rules.failureThreshold;
  return opens ? enter({ ...snapshot, failures, openedAt: now }, 'open') : { ...snapshot, failures };
}

/** Every transition starts a fresh count of probe successes; closing also clears the failures. */
function enter(snapshot: BreakerSnapshot, state: BreakerState): BreakerSnapshot {
  const failures = state === 'closed' ? 0 : snapshot.failures;
  return { ...snapshot, state, failures, successes: 0 };
}
