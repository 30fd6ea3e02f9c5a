import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

/** The requests in flight under each shared signal; one listener per shared signal aborts them all. */
const inFlightBySignal = new WeakMap<AbortSignal, Set<AbortController>>();

function inFlightUnder(shared: AbortSignal): Set<AbortController> {
  let inFlight = inFlightBySignal.get(shared);
  if (inFlight === undefined) {
    const controllers = new Set<AbortController>();
    inFlight = controllers;
    inFlightBySignal.set(shared, controllers);
    shared.addEventListener(
      'abort',
      () => {
        for (const controller of controllers) controller.abort(shared.reason);
        controllers.clear();
      },
      { once: true },
    );
  }
  return inFlight;
}

/**
 * A `fetch` for the SDK's `StreamableHTTPClientTransport` that gives every request its own
 * `AbortSignal`. The transport passes one long-lived signal to all its fetches; on Node 20 each
 * fetch leaves an `abort` listener on it until garbage collection, so under load they pile up
 * (hundreds after a burst) and `MaxListenersExceededWarning` floods the log. Here the shared
 * signal gets one listener, which still aborts every request in flight when the transport closes;
 * a request leaves that set when its response body ends, errors or is cancelled (as the transport
 * does with a 202), or at once when the response has no body (202, 204).
 *
 * @example
 * const transport = new StreamableHTTPClientTransport(url, { fetch: perRequestSignalFetch() });
 */
export function perRequestSignalFetch(baseFetch: FetchLike = fetch): FetchLike {
  return async (url, init) => {
    const shared = init?.signal;
    if (!shared) return baseFetch(url, init);
    const own = new AbortController();
    if (shared.aborted) own.abort(shared.reason);
    const inFlight = inFlightUnder(shared);
    inFlight.add(own);
    const release = () => {
      inFlight.delete(own);
    };
    try {
      const response = await baseFetch(url, { ...init, signal: own.signal });
      if (response.body === null || response.status === 202) {
        release();
        return response;
      }
      return new Response(releasedWhenDone(response.body, release), {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    } catch (error) {
      release();
      throw error;
    }
  };
}

/** `body` as it comes, calling `release` once it ends, errors or is cancelled. */
function releasedWhenDone(body: ReadableStream<Uint8Array>, release: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          release();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  });
}
