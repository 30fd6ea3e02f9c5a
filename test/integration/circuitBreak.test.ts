import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { circuitBreak } from '../../operators/circuitBreak.js';
import { CircuitBreaker } from '../../src/breaker/circuitBreaker.js';
import { type TxError, TxErrorCode } from '../../src/index.js';
import { connectFixture, type Fixture, until } from '../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

describe('circuitBreak over a real MCP server', () => {
  it('trips after the threshold, stops sending, and closes again after a successful probe', async () => {
    fixture = await connectFixture();
    const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeoutMs: 30 });
    const states: string[] = [];
    const watching = breaker.state$.subscribe((state) => states.push(state));
    const call = (tool: string, args: Record<string, unknown>) =>
      firstValueFrom(fixture.tx.attempt$(tool, args).pipe(circuitBreak(breaker))).catch(
        (error: TxError) => error,
      );

    for (let index = 0; index < 3; index++) await call('boom', { message: 'upstream down' });
    expect(breaker.state).toBe('open');
    const refused = (await call('boom', { message: 'upstream down' })) as TxError;
    expect(refused).toMatchObject({ code: TxErrorCode.CircuitOpen });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(fixture.seen).toHaveLength(3);

    await until(() => breaker.state === 'half-open');
    const probe = await call('echo', { value: 'probe' });
    expect(probe).toMatchObject({ data: { value: 'probe' } });
    expect(breaker.state).toBe('closed');
    expect(states).toEqual(['closed', 'open', 'half-open', 'closed']);
    watching.unsubscribe();
  });

  it('does not count a cancelled call', async () => {
    fixture = await connectFixture();
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const subscription = fixture.tx.attempt$('slow', { ms: 5_000 }).pipe(circuitBreak(breaker)).subscribe();
    await until(() => fixture.seen.length === 1);
    subscription.unsubscribe();
    expect(breaker.state).toBe('closed');
  });
});
