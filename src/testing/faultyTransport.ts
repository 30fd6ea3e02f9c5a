import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';
import { asyncScheduler, type SchedulerLike, type Subscription } from 'rxjs';
import * as z from 'zod';
import { parseOrThrow, SchedulerSchema } from '../config/validators.js';

const rate = z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1');
const delay = z.number().min(0, 'must be at least 0').finite('must be finite');

const FaultOptionsSchema = z.strictObject({
  failRate: rate.default(0),
  dropResponseRate: rate.default(0),
  delayMs: z
    .union([delay, z.tuple([delay, delay])], { message: 'must be a number or [min, max]' })
    .default(0),
  disconnectAfter: z.number().int('must be a whole number').positive('must be greater than 0').optional(),
  seed: z.number().int('must be a whole number').default(1),
  spareHandshake: z.boolean().default(true),
  scheduler: SchedulerSchema.optional(),
});

/**
 * Options of {@link faultyTransport}, all optional:
 *
 * - `failRate` (0): share of outgoing messages whose `send` rejects, 0 to 1.
 * - `dropResponseRate` (0): share of incoming responses thrown away, 0 to 1.
 * - `delayMs` (0): delay of every incoming message, fixed or uniform in `[min, max]`.
 * - `disconnectAfter` (none): close the connection after every this many sends.
 * - `seed` (1): the seed of the fault sequence; the same seed gives the same faults.
 * - `spareHandshake` (`true`): no fault until `notifications/initialized` has passed.
 * - `scheduler` (`asyncScheduler`): the timers of the delays.
 *
 * @example
 * faultyTransport(inner, { failRate: 0.1, delayMs: [5, 50], disconnectAfter: 100, seed: 7 });
 */
export type FaultOptions = z.input<typeof FaultOptionsSchema>;

/**
 * What a {@link FaultyTransport} has done so far.
 *
 * @example
 * const { failedSends, droppedResponses } = transport.faults;
 * expect(droppedResponses).toBeGreaterThan(0);
 */
export interface FaultCounts {
  /** Outgoing messages refused (their `send` rejected; nothing was delivered). */
  failedSends: number;
  /** Incoming responses thrown away after the other side had handled the request. */
  droppedResponses: number;
  /** Incoming messages held back by `delayMs`. */
  delayed: number;
  /** Times the connection was closed by `disconnectAfter`. */
  disconnects: number;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same faults. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const isResponse = (message: JSONRPCMessage) => 'id' in message && !('method' in message);
const endsHandshake = (message: JSONRPCMessage) =>
  'method' in message && message.method === 'notifications/initialized';

/**
 * Wraps an SDK `Transport` and injects faults at the message level, deterministically for a seed:
 * outgoing messages that fail to send (`failRate`), responses lost after the other side ran the
 * request (`dropResponseRate` — the case idempotency keys exist for), incoming messages delayed
 * (`delayMs`, fixed or `[min, max]`), and the connection dropped after every `disconnectAfter` sends.
 * The `initialize` handshake is spared unless `spareHandshake: false`. Use it on the client side to
 * test your own pipelines against a flaky network.
 *
 * @example
 * const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
 * await server.connect(serverSide);
 * await client.connect(faultyTransport(clientSide, { dropResponseRate: 0.2, delayMs: [0, 5], seed: 42 }));
 */
export function faultyTransport(inner: Transport, options: FaultOptions = {}): FaultyTransport {
  return new FaultyTransport(inner, parseOrThrow(FaultOptionsSchema, options, 'options'));
}

/**
 * See {@link faultyTransport}.
 *
 * @example
 * const transport = faultyTransport(inner, { dropResponseRate: 0.1 });
 * // ... after the run:
 * console.log(transport.faults.droppedResponses);
 */
export class FaultyTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  readonly faults: FaultCounts = { failedSends: 0, droppedResponses: 0, delayed: 0, disconnects: 0 };
  private readonly random: () => number;
  private readonly scheduler: SchedulerLike;
  private readonly pending = new Set<Subscription>();
  private sends = 0;
  private armed: boolean;

  constructor(
    private readonly inner: Transport,
    private readonly options: z.output<typeof FaultOptionsSchema>,
  ) {
    this.random = seededRandom(options.seed);
    this.armed = !options.spareHandshake;
    this.scheduler = options.scheduler ?? asyncScheduler;
    inner.onmessage = (message, extra) => this.receive(message, extra);
    inner.onerror = (error) => this.onerror?.(error);
    inner.onclose = () => {
      this.clearPending();
      this.onclose?.();
    };
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  setProtocolVersion(version: string): void {
    this.inner.setProtocolVersion?.(version);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  async send(message: JSONRPCMessage, sendOptions?: TransportSendOptions): Promise<void> {
    if (!this.armed) {
      this.armed = endsHandshake(message);
      return this.inner.send(message, sendOptions);
    }
    if (this.random() < this.options.failRate) {
      this.faults.failedSends += 1;
      throw new Error('Injected fault: connection refused');
    }
    await this.inner.send(message, sendOptions);
    this.sends += 1;
    if (this.options.disconnectAfter !== undefined && this.sends % this.options.disconnectAfter === 0) {
      this.faults.disconnects += 1;
      await this.inner.close();
    }
  }

  close(): Promise<void> {
    this.clearPending();
    return this.inner.close();
  }

  private receive(message: JSONRPCMessage, extra?: MessageExtraInfo): void {
    if (!this.armed) {
      this.armed = endsHandshake(message);
      this.onmessage?.(message, extra);
      return;
    }
    if (isResponse(message) && this.random() < this.options.dropResponseRate) {
      this.faults.droppedResponses += 1;
      return;
    }
    const delayMs = this.nextDelay();
    if (delayMs === 0) {
      this.onmessage?.(message, extra);
      return;
    }
    this.faults.delayed += 1;
    const delivery = this.scheduler.schedule(() => {
      this.pending.delete(delivery);
      this.onmessage?.(message, extra);
    }, delayMs);
    this.pending.add(delivery);
  }

  private nextDelay(): number {
    const { delayMs } = this.options;
    if (typeof delayMs === 'number') return delayMs;
    const [min, max] = delayMs;
    return min + this.random() * Math.max(0, max - min);
  }

  private clearPending(): void {
    for (const delivery of this.pending) delivery.unsubscribe();
    this.pending.clear();
  }
}
