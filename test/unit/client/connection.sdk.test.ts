/** `connection$` and `ready` of an McpTx on a client the user connected: nothing to wait for, nothing remade. */
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { connectFixture, type Fixture } from '../../support/fixture.js';

let fixture: Fixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('createMcpTx(client): the connection is the user’s', () => {
  it('is connected (attempt 0) from the start and closed after close(); ready resolves at once', async () => {
    fixture = await connectFixture();
    const { tx } = fixture;
    await tx.ready;
    const states = lastValueFrom(tx.connection$.pipe(toArray()));
    await tx.close();
    const [connected, closed] = await states;
    expect(connected).toMatchObject({ state: 'connected', attempt: 0, serverSupportsTx: true });
    expect(closed).toMatchObject({ state: 'closed', attempt: 0 });
    expect(closed?.error).toBeUndefined();
    expect(closed?.since).toBeGreaterThanOrEqual(connected?.since as number);
  });

  it('gives its attempts no connection to wait for: they are sent as before', async () => {
    fixture = await connectFixture({ serverTx: false });
    const call = fixture.tx.attempt$('echo', {});
    expect(call.env.connection).toBeUndefined();
    expect((await lastValueFrom(call)).meta.serverSupportsTx).toBe(false);
  });

  it('does not remake a connection that its server closes', async () => {
    fixture = await connectFixture();
    const { tx, server } = fixture;
    await server.close();
    const error = await tx.call('echo', {}, { retry: false }).catch((failure: unknown) => failure);
    expect(error).toMatchObject({ code: 'MCP_TX_NETWORK_ERROR' });
    expect((error as Error).message).toContain('Not connected');
    const states: string[] = [];
    tx.connection$.subscribe(({ state }) => states.push(state)).unsubscribe();
    expect(states).toEqual(['connected']);
  });
});
