/**
 * D1 as the JSONL log's users met it: a last line that is complete but lost its newline (a crash
 * between the line and its newline, or a hand repair) must survive the next append — a saga's
 * completed step, a batch journal's header.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchJournal } from '../../../src/cli/journal.js';
import { type EventStore, Saga } from '../../../src/index.js';
import { JsonlEventStore } from '../../../src/node.js';
import { orderSteps } from '../../support/orderSaga.js';
import { connectOrderShop, type OrderShop } from '../../support/orderShop.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-tx-jsonl-users-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Drops the file's final newline, as a crash between a line and its newline leaves it. */
async function loseFinalNewline(path: string): Promise<void> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  await writeFile(path, text.slice(0, -1));
}

describe('a JSONL log whose last line lost its newline (D1)', () => {
  let shop: OrderShop | undefined;
  afterEach(async () => {
    await shop?.fixture.close();
    shop = undefined;
  });

  it('a saga resumed on it keeps its completed step, and compensates it when a later step fails', async () => {
    shop = await connectOrderShop({ config: { retry: { baseDelayMs: 1, maxDelayMs: 5 }, dedupe: false } });
    const path = join(dir, 'sagas.jsonl');
    const log = new JsonlEventStore(path);
    const crashing: EventStore = {
      read$: (filter) => log.read$(filter),
      append: async (event) => {
        if (event.type === 'SagaStepCompleted' && event.data?.step === 'payment') throw new Error('killed');
        return log.append(event);
      },
    };
    await expect(new Saga(shop.fixture.tx, crashing, orderSteps('o-d1')).run('saga-d1')).rejects.toThrow(
      'killed',
    );
    await log.close();
    await loseFinalNewline(path); // the reserve step's record: complete, without its newline

    const resumedLog = new JsonlEventStore(path);
    const result = await new Saga(shop.fixture.tx, resumedLog, orderSteps('o-d1', 'shipping')).resume(
      'saga-d1',
    );
    expect(result.status).toBe('compensated');
    expect(shop.effects).toMatchObject({ 'reserve:o-d1': 1, 'release:o-d1': 1, 'refund:o-d1': 1 });
    const steps = await lastValueFrom(resumedLog.read$({ type: 'SagaStepCompleted' }).pipe(toArray()));
    expect(steps.map((event) => event.data?.step)).toEqual(['reserve', 'payment']);
    await resumedLog.close();
  });

  it('a batch journal whose header lost its newline opens again after a run recorded lines', async () => {
    const path = join(dir, 'run.journal.jsonl');
    const lines = [{ line: 1, tool: 'echo', arguments: { n: 1 } }];
    const first = await BatchJournal.open(path, lines);
    await first.close();
    await loseFinalNewline(path); // the header

    const second = await BatchJournal.open(path, lines);
    const line = lines[0] as (typeof lines)[number];
    expect(second.keyOf(line)).toBe(first.keyOf(line));
    await second.record(line, { line: 1, tool: 'echo', ok: true, data: { n: 1 } });
    await second.close();

    const third = await BatchJournal.open(path, lines); // was: exit 2, "not an mcp-tx batch journal"
    expect(third.keyOf(line)).toBe(first.keyOf(line));
    expect(third.finished(line)).toMatchObject({ ok: true, fromJournal: true });
    await third.close();
  });
});
