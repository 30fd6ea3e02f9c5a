/// <reference lib="dom" />
/**
 * The page: a type-ahead search (each keystroke's `tx.call$` switched to by `switchMap`, which
 * cancels the stale call on the server) and a burst of 200 keyed calls through `throttle`, both
 * through one `circuitBreak` whose `state$` the page shows, with `retryWithPolicy`.
 */
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CircuitBreaker, createMcpTx, isTxError, TxErrorCode, tokenBucket } from 'mcp-tx';
import { circuitBreak, retryWithPolicy, throttle } from 'mcp-tx/operators';
import {
  catchError,
  fromEvent,
  map,
  mergeMap,
  type Observable,
  of,
  range,
  retry,
  scan,
  switchMap,
  tap,
  throwError,
  timer,
} from 'rxjs';

const BURST = 200;
const params = new URLSearchParams(location.search);
const url = new URL(params.get('mcp') ?? 'http://127.0.0.1:3001/mcp');

const tx = createMcpTx(() => new StreamableHTTPClientTransport(url), {
  retry: false, // the page composes its own retry below
  reconnect: { baseDelayMs: 100, maxDelayMs: 1_000 },
  // an attempt waits at most this long for a (re)connection: then it fails, and the breaker counts it
  timeoutMs: 2_000,
});
const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 1_000 });
const limiter = tokenBucket({ ratePerSecond: 100, burst: 20 });

/** `retryWithPolicy` after `circuitBreak`: each attempt goes through the breaker; its refusals are not retried. */
const retryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 };

/** Refused by the open breaker: wait as long as it says, then try again (the burst resumes by itself). */
const untilBreakerAdmits = <T>(source: Observable<T>) =>
  source.pipe(
    retry({
      delay: (error) =>
        isTxError(error) && error.code === TxErrorCode.CircuitOpen
          ? timer(Math.max(error.retryAfterMs ?? 0, 100))
          : throwError(() => error),
    }),
  );

const element = (id: string) => document.getElementById(id) as HTMLElement;
const show = (id: string, text: string, state?: string) => {
  element(id).textContent = text;
  if (state !== undefined) element(id).className = `state ${state}`;
};

element('server').textContent = url.href;
tx.connection$.subscribe(({ state }) => show('connection', state, state));
const seen: string[] = [];
breaker.state$.subscribe((state) => {
  show('breaker', state, state);
  if (seen.at(-1) !== state) seen.push(state);
  show('breaker-history', seen.join(' → '));
});

// Type-ahead: a new keystroke unsubscribes from the previous call, and mcp-tx cancels it on the wire.
let sent = 0;
let shown = 0;
fromEvent(element('q'), 'input')
  .pipe(
    map(() => (element('q') as HTMLInputElement).value.trim()),
    switchMap((q) =>
      q === ''
        ? of('—')
        : tx
            .call$('search', { q })
            .pipe(circuitBreak(breaker), retryWithPolicy(retryPolicy))
            .pipe(
              tap({ subscribe: () => show('searches-sent', String(++sent)) }),
              map(({ data }) => {
                const { hits } = data as { hits: string[] };
                return `${q}: ${hits.length > 0 ? hits.join(', ') : 'no match'}`;
              }),
              catchError((error: unknown) =>
                of(`${q}: failed (${isTxError(error) ? error.code : String(error)})`),
              ),
            ),
    ),
  )
  .subscribe((answer) => {
    show('answer', answer);
    show('answers-shown', String(++shown));
  });

// Burst: 200 keyed calls, 20 subscribed at a time, each admitted by the token bucket.
let runs = 0;
fromEvent(element('burst'), 'click')
  .pipe(
    switchMap(() => {
      const run = `${Date.now().toString(36)}-${++runs}`;
      const started = performance.now();
      show('burst-status', 'running');
      show('progress', `0 / ${BURST}`);
      return range(0, BURST).pipe(
        mergeMap((n) => {
          const key = `burst-${run}-${n}`;
          const call = tx.call$('mark', { key }, { idempotencyKey: key });
          return untilBreakerAdmits(
            call.pipe(throttle(limiter), circuitBreak(breaker), retryWithPolicy(retryPolicy)),
          );
        }, 20),
        scan((done) => done + 1, 0),
        tap({
          next: (done) => show('progress', `${done} / ${BURST}`),
          complete: () =>
            show('burst-status', `done in ${Math.round(performance.now() - started)} ms (run ${run})`),
        }),
        catchError((error: unknown) => {
          show(
            'burst-status',
            `failed: ${isTxError(error) ? `${error.code} ${error.message}` : String(error)}`,
          );
          return of(0);
        }),
      );
    }),
  )
  .subscribe();
