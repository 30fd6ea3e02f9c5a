import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { record } from '../../../operators/record.js';
import { retryWithPolicy } from '../../../operators/retryWithPolicy.js';
import { type EventStore, MemoryEventStore } from '../../../src/events/eventStore.js';
import { JsonlEventStore } from '../../../src/events/jsonlEventStore.js';
import { TxErrorCode } from '../../../src/index.js';
import { connectFixture, expectFailure, type Fixture } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

const events = (store: EventStore) => lastValueFrom(store.read$().pipe(toArray()));

describe('record over a real MCP server', () => {
  it('logs Requested before the call and Completed before the caller sees the result', async () => {
    fixture = await connectFixture();
    const store = new MemoryEventStore();
    const call = fixture.tx.attempt$(
      'flaky',
      { key: 'r', failTimes: 1 },
      { transactionId: 'wf-1', idempotencyKey: 'k' },
    );
    const quick = { baseDelayMs: 1, maxDelayMs: 2, jitter: false as const };
    let seenAtResult = 0;
    await firstValueFrom(call.pipe(retryWithPolicy(quick), record(store))).then(async () => {
      seenAtResult = (await events(store)).length;
    });
    const log = await events(store);
    expect(seenAtResult).toBe(2);
    expect(log.map((event) => event.type)).toEqual(['ToolCallRequested', 'ToolCallCompleted']);
    expect(log[0]).toMatchObject({ requestId: call.request.requestId, transactionId: 'wf-1', tool: 'flaky' });
    expect(log[0]?.data).toEqual({ idempotencyKey: 'k' });
    expect(log[1]?.data).toMatchObject({ status: 'completed', attempts: 2, duplicate: false });
  });

  it('logs ToolCallFailed with the error code, and arguments only when asked', async () => {
    fixture = await connectFixture();
    const store = new MemoryEventStore();
    await expectFailure(
      firstValueFrom(
        fixture.tx.attempt$('boom', { message: 'nope' }).pipe(record(store, { recordArguments: true })),
      ),
    );
    const log = await events(store);
    expect(log[0]?.data).toMatchObject({ arguments: { message: 'nope' } });
    expect(log[1]).toMatchObject({
      type: 'ToolCallFailed',
      data: { errorCode: TxErrorCode.ToolError, status: 'failed' },
    });
  });

  it('fails the call before sending it when the log cannot be written', async () => {
    fixture = await connectFixture();
    const broken: EventStore = {
      append: async () => {
        throw new Error('disk full');
      },
      read$: () => new MemoryEventStore().read$(),
    };
    const error = await expectFailure(firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(record(broken))));
    expect(error).toMatchObject({ code: TxErrorCode.StoreUnavailable, retryable: true });
    expect(fixture.seen).toHaveLength(0);
  });

  it('keeps the store’s own retryable: false (a JSONL log that failed to read refuses appends)', async () => {
    fixture = await connectFixture();
    const dir = await mkdtemp(join(tmpdir(), 'mcp-tx-record-'));
    try {
      const path = join(dir, 'events.jsonl');
      await writeFile(path, 'not an event\n{"also":"not"}\n');
      const store = new JsonlEventStore(path);
      await expectFailure(events(store));
      const error = await expectFailure(firstValueFrom(fixture.tx.attempt$('echo', {}).pipe(record(store))));
      expect(error).toMatchObject({ code: TxErrorCode.StoreUnavailable, retryable: false });
      expect(error.message).toContain(`${path}:1`);
      expect(fixture.seen).toHaveLength(0);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
