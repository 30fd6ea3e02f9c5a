import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

const EFFECT = Symbol('mcp-tx.effect');

/**
 * A tool answer whose effect `txTool` commits with the key's completion. Made by {@link withEffect}.
 *
 * @example
 * const answer: ResultWithEffect<RedisEffect> = withEffect(result, [['HINCRBY', 'balances', id, cents]]);
 */
export interface ResultWithEffect<Effect> {
  readonly [EFFECT]: true;
  readonly result: CallToolResult;
  readonly effect: Effect;
}

/**
 * Answers `result` from a `txTool` handler and leaves the side effect to the store: the store's
 * `commit` applies `effect` in one atomic step with the record of the idempotency key, and only
 * while this request still holds the key. A server killed mid-call then leaves neither, and the
 * retried call does the effect once — where an effect done inside the handler would be done again.
 * The store must be an `EffectStore` (`redisIdempotencyStore` takes Redis commands).
 *
 * @example
 * server.registerTool('credit', { inputSchema: { account: z.string(), cents: z.number() } },
 *   txTool(async ({ account, cents }) =>
 *     withEffect({ content: [{ type: 'text', text: 'credited' }] }, [['HINCRBY', 'balances', account, cents]]),
 *   { tool: 'credit', store: redisIdempotencyStore(redis) }));
 */
export function withEffect<Effect>(result: CallToolResult, effect: Effect): ResultWithEffect<Effect> {
  return { [EFFECT]: true, result, effect };
}

/**
 * Whether a handler answered with {@link withEffect}.
 *
 * @example
 * const result = isResultWithEffect(answer) ? answer.result : answer;
 */
export function isResultWithEffect(value: unknown): value is ResultWithEffect<unknown> {
  return typeof value === 'object' && value !== null && EFFECT in value;
}
