import type { RetryPolicy } from './schemas.js';

/** MCP-Tx 0.1.0's jitter: the delay varies by up to this fraction either way. */
export const PROPORTIONAL_JITTER = 0.2;

/**
 * The delay before retry number `retryNumber` (1 for the first retry): `baseDelayMs *
 * multiplier^(retryNumber-1)`, capped at `maxDelayMs`, then randomised per `jitter` — `true` or
 * `'proportional'` ±20 % (MCP-Tx 0.1.0), `'full'` uniform in [0, d], `'equal'` d/2 plus uniform in
 * [0, d/2], `false` or `'none'` exactly d. Never negative, never above `maxDelayMs`.
 *
 * @example
 * retryDelay({ ...DEFAULT_RETRY_POLICY, jitter: false }, 3); // 4000
 */
export function retryDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'multiplier' | 'maxDelayMs' | 'jitter'>,
  retryNumber: number,
  random: () => number = Math.random,
): number {
  const capped = Math.min(policy.maxDelayMs, exponentialDelay(policy, retryNumber));
  return Math.min(policy.maxDelayMs, Math.max(0, jittered(capped, policy.jitter, random)));
}

/** `baseDelayMs * multiplier^(retryNumber-1)`; Infinity when that overflows (a zero base stays 0, not NaN). */
function exponentialDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'multiplier'>,
  retryNumber: number,
): number {
  if (policy.baseDelayMs === 0) return 0;
  return policy.baseDelayMs * policy.multiplier ** Math.max(0, retryNumber - 1);
}

function jittered(delay: number, jitter: RetryPolicy['jitter'], random: () => number): number {
  switch (jitter) {
    case false:
    case 'none':
      return delay;
    case 'full':
      return random() * delay;
    case 'equal':
      return delay / 2 + (random() * delay) / 2;
    default:
      return delay * (1 + PROPORTIONAL_JITTER * (2 * random() - 1));
  }
}
