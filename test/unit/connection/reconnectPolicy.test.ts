import { describe, expect, it } from 'vitest';
import { reconnectDelay } from '../../../src/connection/reconnectPolicy.js';
import {
  createMcpTx,
  DEFAULT_RECONNECT_POLICY,
  parseOrThrow,
  ReconnectPolicySchema,
  TxConfigSchema,
  TxError,
  TxErrorCode,
} from '../../../src/index.js';

const connect = () => {
  throw new Error('not called: the config is checked first');
};

/** The validation error createMcpTx(connect, config) throws. */
function rejected(config: unknown): TxError {
  try {
    createMcpTx(connect, config as never);
  } catch (error) {
    if (error instanceof TxError) return error;
    throw error;
  }
  throw new Error('expected the config to be refused');
}

describe('the reconnect policy', () => {
  it('defaults to 100 ms → 5 s, ×2, jitter, unlimited attempts, 10 s per attempt', () => {
    expect(DEFAULT_RECONNECT_POLICY).toEqual({
      baseDelayMs: 100,
      maxDelayMs: 5_000,
      multiplier: 2,
      jitter: true,
      maxAttempts: Infinity,
      connectTimeoutMs: 10_000,
    });
    expect(Object.isFrozen(DEFAULT_RECONNECT_POLICY)).toBe(true);
    expect(parseOrThrow(TxConfigSchema, {}, 'config').reconnect).toEqual(DEFAULT_RECONNECT_POLICY);
    expect(parseOrThrow(TxConfigSchema, { reconnect: { maxAttempts: 4 } }, 'config').reconnect).toEqual({
      ...DEFAULT_RECONNECT_POLICY,
      maxAttempts: 4,
    });
    expect(parseOrThrow(TxConfigSchema, { reconnect: false }, 'config').reconnect).toBe(false);
  });

  it('waits the retry backoff: none before the very first connection, baseDelayMs before the first reconnect', () => {
    const policy = { ...DEFAULT_RECONNECT_POLICY, jitter: false as const };
    const connecting = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => reconnectDelay(policy, attempt, false));
    expect(connecting).toEqual([0, 100, 200, 400, 800, 1_600, 3_200, 5_000]);
    const reconnecting = [1, 2, 3, 4, 5, 6, 7].map((attempt) => reconnectDelay(policy, attempt, true));
    expect(reconnecting).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000]);
    const jittered = reconnectDelay(DEFAULT_RECONNECT_POLICY, 1, true, () => 1);
    expect(jittered).toBe(120); // ±20 %, the retry policy's
    expect(reconnectDelay({ ...policy, baseDelayMs: 0 }, 3, true)).toBe(0);
  });

  it.each([
    [{ reconnect: { maxDelayMs: -1 } }, 'config.reconnect.maxDelayMs', 'must be at least 0'],
    [{ reconnect: { baseDelayMs: 6_000 } }, 'config.reconnect.maxDelayMs', 'must be at least baseDelayMs'],
    [{ reconnect: { multiplier: 0.5 } }, 'config.reconnect.multiplier', 'must be at least 1'],
    [{ reconnect: { jitter: 'lots' } }, 'config.reconnect.jitter', "one of 'full'"],
    [{ reconnect: { maxAttempts: 0 } }, 'config.reconnect.maxAttempts', 'at least 1, or Infinity'],
    [{ reconnect: { maxAttempts: 1.5 } }, 'config.reconnect.maxAttempts', 'at least 1, or Infinity'],
    [{ reconnect: { connectTimeoutMs: 0 } }, 'config.reconnect.connectTimeoutMs', 'greater than 0'],
    [{ reconnect: { retries: 3 } }, 'config.reconnect.retries', 'is not a known option'],
    [{ reconnect: true }, 'config.reconnect', 'must be false or a reconnect policy object'],
    [{ pingIntervalMs: 0 }, 'config.pingIntervalMs', 'greater than 0'],
    [{ clientInfo: { name: '', version: '1' } }, 'config.clientInfo.name', 'must not be empty'],
    [{ clientInfo: { name: 'agent' } }, 'config.clientInfo.version', 'must be a string'],
  ])('refuses %j with MCP_TX_VALIDATION naming %s', (config, field, reason) => {
    const error = rejected(config);
    expect(error.code).toBe(TxErrorCode.Validation);
    expect(error.message).toContain(`Invalid ${field}`);
    expect(error.message).toContain(reason);
  });

  it('takes Infinity and whole numbers for maxAttempts, and the retry jitter kinds', () => {
    for (const reconnect of [{ maxAttempts: Infinity }, { maxAttempts: 1 }, { jitter: 'full' as const }]) {
      expect(() => parseOrThrow(ReconnectPolicySchema, reconnect, 'reconnect')).not.toThrow();
    }
  });

  it('refuses what is neither a client nor a transport factory, naming both', () => {
    for (const target of [undefined, null, 42, {}, 'stdio']) {
      expect(() => createMcpTx(target as never)).toThrow(
        'Invalid client: must be a connected MCP SDK Client, or a function that returns a Transport',
      );
    }
  });
});
