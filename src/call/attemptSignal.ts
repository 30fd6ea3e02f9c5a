type AbortListener = (event: { type: 'abort' }) => void;

/**
 * The cancel signal handed to the SDK for one attempt: the part of `AbortSignal` the SDK's
 * `Protocol.request` uses (`aborted`, `reason`, `throwIfAborted`, `addEventListener('abort')`,
 * `removeEventListener`), without an `AbortController`'s EventTarget. Creating and listening to a
 * real one costs about a third of an in-memory call on Node 20, on every attempt; this is a few
 * fields. The integration tests check that aborting it cancels the request on the wire. An McpTx
 * also uses one as its close signal, which every call in flight listens to (no listener limit,
 * removal in constant time).
 *
 * @example
 * const signal = new AttemptSignal();
 * client.callTool(params, undefined, { signal: signal.asAbortSignal() });
 * signal.abort('unsubscribed'); // the SDK sends notifications/cancelled
 */
export class AttemptSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: AbortListener | null = null;
  /** The commonest case, one listener (the SDK's, or one call's on a close signal), needs no Set. */
  private listener?: AbortListener;
  private others?: Set<AbortListener>;

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Adds `listener` once, as EventTarget does (adding it again changes nothing). */
  addEventListener(type: string, listener: AbortListener): void {
    if (type !== 'abort' || listener === this.listener || this.others?.has(listener)) return;
    if (this.listener === undefined) {
      this.listener = listener;
      return;
    }
    this.others ??= new Set();
    this.others.add(listener);
  }

  removeEventListener(type: string, listener: AbortListener): void {
    if (type !== 'abort') return;
    if (listener === this.listener) this.listener = undefined;
    else this.others?.delete(listener);
  }

  /** Aborts once: later calls do nothing. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const event = { type: 'abort' as const };
    this.onabort?.(event);
    this.listener?.(event);
    for (const listener of this.others ?? []) listener(event);
  }

  /** Typed as what the SDK's `RequestOptions.signal` expects. */
  asAbortSignal(): AbortSignal {
    return this as unknown as AbortSignal;
  }
}
