import type { Redis } from 'ioredis';
import { defer, distinctUntilChanged, Observable } from 'rxjs';
import * as z from 'zod';
import { functionSchema, parseOrThrow, TimeoutMsSchema } from '../config/validators.js';
import { type TxError, validationError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import { StoreOutage, storeUnavailable, withinDeadline } from '../core/storeDeadline.js';
import {
  type Breaker,
  type BreakerPermit,
  type BreakerState,
  circuitOpenError,
  permitReportingOnce,
} from './breaker.js';
import { BreakerOptionsSchema } from './breakerSchemas.js';
import { retryAfterMs } from './breakerStrategy.js';
import { type BreakerCommands, type RedisAdmission, withBreakerCommands } from './redisBreakerScripts.js';

const RedisBreakerOptionsSchema = BreakerOptionsSchema.extend({
  key: z.string().min(1, 'must not be empty'),
  probeTimeoutMs: TimeoutMsSchema.default(30_000),
  commandTimeoutMs: TimeoutMsSchema.default(2_000),
  failOpen: z.boolean().default(false),
  /**
   * Told of every Redis failure of an admission or an outcome report (a `MCP_TX_STORE_UNAVAILABLE`
   * TxError), whether the call then fails or, with `failOpen`, goes on: to log or count outages.
   * What it throws is ignored.
   */
  onStoreError: functionSchema<(error: TxError) => void>('(error) => void').optional(),
});

/**
 * Options of {@link RedisCircuitBreaker}:
 *
 * - `key` (required): names the breaker; every process using the same key shares one. Its state is
 *   the Redis hash `{<key>}`, which is also the pub/sub channel of its transitions, and its probe
 *   lock is `{<key>}:probe` — one hash tag, so both live in one slot of a Redis Cluster.
 * - `failureThreshold`, `recoveryTimeoutMs`, `successThreshold`, `isFailure`: as in
 *   `CircuitBreakerOptions` (from `mcp-tx`), with failures counted across processes and one probe at a time.
 * - `probeTimeoutMs` (30 000): how long a process may hold the probe before another may take it; at
 *   most 2 147 483 647. A probe that outlasts it is ignored (see {@link RedisCircuitBreaker}), so
 *   set it above the slowest call, timeout included.
 * - `commandTimeoutMs` (2 000): how long any one Redis operation may take before it fails with
 *   `MCP_TX_STORE_UNAVAILABLE`, so a Redis that is down or stalled answers in bounded time whatever
 *   the client's own retry and offline-queue settings; at most 2 147 483 647.
 * - `failOpen` (`false`): when Redis fails or stalls past `commandTimeoutMs`, admit the call as if
 *   the breaker were closed instead of refusing it with `MCP_TX_STORE_UNAVAILABLE`; while Redis
 *   stays down calls are admitted at once, without waiting on Redis (one request at a time asks
 *   whether it is back), and their outcomes are not recorded. The trade-off: availability over the
 *   shared breaker — during an outage nothing protects the server behind it: a breaker that was open
 *   lets every call through, and failures do not open it, in this process or (uncounted) in any
 *   other. Keep it `false` when hammering a failing server costs more than failing the calls. The
 *   failures are reported to `onStoreError`, else by a process warning (code
 *   `MCP_TX_STORE_FAIL_OPEN`) once per outage.
 * - `onStoreError` (none): `(error) => void`, told of every Redis failure of `acquire` and of the
 *   outcome reports, failing open or not (documented on the field); `getState()` and `state$`
 *   report theirs to their caller.
 *
 * @example
 * const breaker = new RedisCircuitBreaker(redis, { key: 'mcp-tx:breaker:pricing', failureThreshold: 5 });
 */
export type RedisBreakerOptions = z.input<typeof RedisBreakerOptionsSchema>;

/** What a breaker failing open hands out: leave to go, whose outcome nobody records. */
const UNCOUNTED: BreakerPermit = Object.freeze({ success() {}, failure() {}, release() {} });

/**
 * A circuit breaker whose state lives in Redis, shared by every process using the same `key`: a
 * breaker one process opens refuses calls in all of them; when the recovery time has passed exactly
 * one process at a time gets the half-open probe (a lock that expires after `probeTimeoutMs`, so a
 * crashed prober does not block recovery); `successThreshold` successful probes close it, a failed
 * probe re-opens it. Each probe is fenced by a fresh token kept in the lock: its report releases the
 * lock and moves the breaker only while the lock still holds that token. A probe slower than
 * `probeTimeoutMs` has lost its window: its late success, failure or release is ignored — it counts
 * nothing, moves nothing, and leaves alone the lock another process may have taken since — so only
 * the current probe decides, and the breaker stays half-open until it does (or, when nobody took
 * the lock, until the next caller probes). `state$` follows the transitions any process makes
 * (Redis pub/sub, so within the network round trip). A Redis that fails, or does not answer within
 * `commandTimeoutMs` (down or stalled), refuses the call with `MCP_TX_STORE_UNAVAILABLE` — or, with
 * `failOpen: true`, admits it uncounted, as if closed (see {@link RedisBreakerOptions}); calls work
 * again once it answers, on the same client.
 *
 * @example
 * const breaker = new RedisCircuitBreaker(new Redis(process.env.REDIS_URL), { key: 'pricing', failureThreshold: 5 });
 * const tx = createMcpTx(client, { breaker });
 */
export class RedisCircuitBreaker implements Breaker {
  private readonly settings: z.output<typeof RedisBreakerOptionsSchema>;
  private readonly redis: Redis & BreakerCommands;
  private readonly stateKey: string;
  private readonly lockKey: string;
  private readonly outage: StoreOutage;

  constructor(redis: Redis, options: RedisBreakerOptions) {
    if (typeof (redis as Partial<Redis> | null)?.defineCommand !== 'function') {
      throw validationError('redis', 'must be an ioredis client');
    }
    this.settings = parseOrThrow(RedisBreakerOptionsSchema, options, 'options');
    this.redis = withBreakerCommands(redis);
    this.stateKey = `{${this.settings.key}}`;
    this.lockKey = `${this.stateKey}:probe`;
    this.outage = new StoreOutage(
      'Circuit breaker store',
      'calls go through as if the breaker were closed, their outcomes not counted,',
      this.settings,
    );
  }

  /**
   * Asks Redis (one script) for leave: a permit when closed, or the probe when the recovery time has
   * passed and no other process holds it; else `MCP_TX_CIRCUIT_OPEN` with `retryAfterMs`. Redis
   * errors and timeouts fail with `MCP_TX_STORE_UNAVAILABLE` (retryable) — or, failing open, give a
   * permit whose outcome is not recorded (at once while Redis is known to be down).
   */
  acquire(): Observable<BreakerPermit> {
    const { recoveryTimeoutMs, probeTimeoutMs, failOpen } = this.settings;
    return defer(async () => {
      if (failOpen && this.outage.isDown) {
        this.outage.check(() => this.bounded(this.redis.hget(this.stateKey, 'state')));
        return UNCOUNTED;
      }
      const token = newRequestId();
      const admitting = this.redis.mcpTxBreakerAdmit(
        this.stateKey,
        this.lockKey,
        recoveryTimeoutMs,
        probeTimeoutMs,
        token,
      );
      const admission = await this.bounded(admitting).catch((error: unknown) => {
        // Should Redis still run the script late, the probe it hands out to nobody is let go at once.
        admitting.then(
          ([late]) => late === 'probe' && this.permit(token).release(),
          () => undefined,
        );
        this.outage.failed(error);
        if (failOpen) return undefined;
        throw error;
      });
      if (admission === undefined) return UNCOUNTED;
      this.outage.answered();
      return this.permitOrRefusal(admission, token);
    });
  }

  /** The state in Redis now; `MCP_TX_STORE_UNAVAILABLE` when Redis fails or does not answer in time. */
  async getState(): Promise<BreakerState> {
    return ((await this.bounded(this.redis.hget(this.stateKey, 'state'))) as BreakerState | null) ?? 'closed';
  }

  /**
   * The state now, then every transition any process makes, on a subscriber connection of its own
   * (listening starts before the state is read). Redis blips do not end it: on every reconnection it
   * re-reads the state and emits it if it changed; it errors with `MCP_TX_STORE_UNAVAILABLE` only
   * when that connection gives up (ioredis's `retryStrategy` stops reconnecting).
   */
  get state$(): Observable<BreakerState> {
    return new Observable<BreakerState>((subscriber) => {
      const listener = this.redis.duplicate();
      const readAfterSubscribing = () =>
        listener
          .subscribe(this.stateKey)
          .then(() => this.getState())
          .then(
            (state) => subscriber.next(state),
            () => undefined,
          ); // read again on the next 'ready'
      listener.on('error', () => undefined); // transient: ioredis reconnects and re-subscribes
      listener.on('ready', readAfterSubscribing);
      listener.on('message', (_channel, state) => subscriber.next(state as BreakerState));
      listener.on('end', () =>
        subscriber.error(
          storeUnavailable('Circuit breaker store', new Error('subscriber connection closed')),
        ),
      );
      return () => listener.disconnect();
    }).pipe(distinctUntilChanged());
  }

  /** The permit the admission script granted (the probe is the one taken with `token`), or its refusal. */
  private permitOrRefusal(admission: RedisAdmission, token: string): BreakerPermit {
    const { key } = this.settings;
    switch (admission[0]) {
      case 'closed':
        return this.permit(undefined);
      case 'probe':
        return this.permit(token);
      case 'open': {
        const [, openedAt, now] = admission;
        throw circuitOpenError(retryAfterMs(openedAt, this.settings, now), key);
      }
      case 'probe-taken':
        throw circuitOpenError(0, key);
    }
  }

  /** `operation`, failing with `MCP_TX_STORE_UNAVAILABLE` when Redis fails or is slower than `commandTimeoutMs`. */
  private bounded<T>(operation: Promise<T>): Promise<T> {
    return withinDeadline(operation, this.settings.commandTimeoutMs, 'Circuit breaker store');
  }

  /** A permit; `probeToken` is the token the probe lock was taken with, none when closed. */
  private permit(probeToken: string | undefined): BreakerPermit {
    const { isFailure, failureThreshold, successThreshold } = this.settings;
    return permitReportingOnce(isFailure, (outcome) => {
      if (outcome === 'release' && probeToken === undefined) return;
      const reporting = this.redis.mcpTxBreakerReport(
        this.stateKey,
        this.lockKey,
        outcome,
        probeToken ?? '',
        failureThreshold,
        successThreshold,
      );
      // the probe lock expires; a lost report only delays the breaker
      this.bounded(reporting).catch((error: unknown) => this.outage.failed(error));
    });
  }
}
