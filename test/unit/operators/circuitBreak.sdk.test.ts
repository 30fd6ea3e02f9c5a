import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { circuitBreak } from '../../../operators/circuitBreak.js';
import { type BreakerState, CircuitBreaker } from '../../../src/breaker/circuitBreaker.js';
import { TxErrorCode } from '../../../src/core/errors.js';
import type { JsonObject } from '../../../src/core/types.js';
import { cancellations, connectFixture, expectFailure, type Fixture, until } from '../../support/fixture.js';

let fixture: Fixture;
let breaker: CircuitBreaker | undefined;
afterEach(async () => {
  breaker?.dispose();
  breaker = undefined;
  await fixture?.close();
});

/** One attempt of `tool` through the breaker, as a Promise. */
const call = (tool: string, args: JsonObject) =>
  firstValueFrom(fixture.tx.attempt$(tool, args).pipe(circuitBreak(breaker as CircuitBreaker)));

const handled = (tool: string) => fixture.seen.filter((seen) => seen.tool === tool).length;

/** Real time, short, yet long enough that a loaded machine does not reach half-open between two asserts. */
const RECOVERY_MS = 100;

describe('circuitBreak over a real MCP server', () => {
  it('trips after the threshold, stops sending, and closes again after a successful probe', async () => {
    fixture = await connectFixture();
    breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: RECOVERY_MS });
    const states: BreakerState[] = [];
    breaker.state$.subscribe((state) => states.push(state));

    for (let index = 0; index < 3; index++) {
      expect(await expectFailure(call('boom', { message: 'upstream down' }))).toMatchObject({
        code: TxErrorCode.ToolError,
      });
    }
    expect(breaker.state).toBe('open');
    const refused = await expectFailure(call('boom', { message: 'upstream down' }));
    expect(refused).toMatchObject({
      code: TxErrorCode.CircuitOpen,
      retryable: false,
      meta: { status: 'rejected' },
    });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(RECOVERY_MS);
    expect(await expectFailure(call('echo', { value: 'too soon' }))).toMatchObject({
      code: TxErrorCode.CircuitOpen,
    });
    expect(handled('boom')).toBe(3);
    expect(handled('echo')).toBe(0);

    await until(() => states.at(-1) === 'half-open'); // announced by state$'s timer, no call needed
    const probe = await call('echo', { value: 'probe' });
    expect(probe).toMatchObject({ data: { value: 'probe' }, meta: { status: 'completed' } });
    expect(breaker.state).toBe('closed');
    expect(states).toEqual(['closed', 'open', 'half-open', 'closed']);
    expect(fixture.seen.map(({ tool }) => tool)).toEqual(['boom', 'boom', 'boom', 'echo']);
  });

  it('re-opens when the probe fails, and sends nothing more until the next recovery', async () => {
    fixture = await connectFixture();
    breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: RECOVERY_MS });
    await expectFailure(call('boom', { message: 'down' }));
    await until(() => breaker?.state === 'half-open');
    await expectFailure(call('boom', { message: 'still down' }));
    expect(breaker.state).toBe('open');
    expect(await expectFailure(call('echo', {}))).toMatchObject({ code: TxErrorCode.CircuitOpen });
    expect(fixture.seen).toHaveLength(2);
  });

  it('does not count a call cancelled on the wire, nor a call with invalid arguments', async () => {
    fixture = await connectFixture();
    breaker = new CircuitBreaker({ failureThreshold: 1 });
    const slow = fixture.tx
      .attempt$('slow', { ms: 5_000 })
      .pipe(circuitBreak(breaker))
      .subscribe({ error: () => undefined });
    await until(() => handled('slow') === 1);
    slow.unsubscribe();
    await until(() => cancellations(fixture.received).length === 1);
    // the server rejects the arguments (-32602): the caller's mistake, not the server's health
    expect(await expectFailure(call('boom', { message: 42 }))).toMatchObject({
      code: TxErrorCode.ProtocolError,
      retryable: false,
    });
    expect(breaker.state).toBe('closed');
    expect(await call('echo', { value: 1 })).toMatchObject({ data: { value: 1 } });
  });

  it('frees the half-open probe slot when the probe is cancelled', async () => {
    fixture = await connectFixture();
    breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeoutMs: RECOVERY_MS });
    await expectFailure(call('boom', { message: 'down' }));
    await until(() => breaker?.state === 'half-open');
    const probe = fixture.tx
      .attempt$('slow', { ms: 5_000 })
      .pipe(circuitBreak(breaker))
      .subscribe({ error: () => undefined });
    await until(() => handled('slow') === 1);
    expect(await expectFailure(call('echo', {}))).toMatchObject({ code: TxErrorCode.CircuitOpen });
    probe.unsubscribe();
    expect(await call('echo', { value: 'second probe' })).toMatchObject({ data: { value: 'second probe' } });
    expect(breaker.state).toBe('closed');
  });
});
