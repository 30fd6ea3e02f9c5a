import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ledgerStore } from '../../../src/cli/ledgerStore.js';
import type { IdempotencyRecord } from '../../../src/index.js';

const record = (text: string): IdempotencyRecord => ({
  kind: 'result',
  result: { content: [{ type: 'text', text }] },
});

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mcp-tx-ledger-'));
  path = join(dir, 'ledger.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A ledger store on `path` that counts the effects applied to it, replayed ones included. */
function open() {
  const charged: string[] = [];
  const store = ledgerStore<{ order: string }>(path, ({ order }) => charged.push(order));
  return { store, charged };
}

describe('ledgerStore', () => {
  it('keeps an effect and its key’s completion across a restart: the key answers completed, the effect is replayed', async () => {
    const first = open();
    const begun = await first.store.begin('k1', 'fp', 60_000);
    expect(begun.status).toBe('new');
    const token = begun.status === 'new' ? begun.token : undefined;
    const completion = { key: 'k1', fingerprint: 'fp', record: record('charged'), ttlMs: 60_000, token };
    expect(await first.store.commit({ order: 'o1' }, completion)).toBe(true);
    expect(first.charged).toEqual(['o1']);

    const second = open(); // a new process on the same file
    expect(second.charged).toEqual(['o1']);
    expect(await second.store.begin('k1', 'fp', 60_000)).toEqual({
      status: 'completed',
      record: record('charged'),
    });
    expect(await second.store.begin('k1', 'other', 60_000)).toEqual({ status: 'conflict' });
  });

  it('lets a key held in progress go with the process, and applies nothing for a holder that lost its key', async () => {
    const first = open();
    await first.store.begin('k2', 'fp', 60_000);
    expect(await first.store.begin('k2', 'fp', 60_000)).toEqual({ status: 'in_progress' });

    const second = open();
    const retaken = await second.store.begin('k2', 'fp', 60_000);
    expect(retaken.status).toBe('new');
    const stale = { key: 'k2', fingerprint: 'fp', record: record('late'), ttlMs: 60_000, token: 'not-ours' };
    expect(await second.store.commit({ order: 'o2' }, stale)).toBe(false);
    expect(second.charged).toEqual([]);
    expect(open().charged).toEqual([]);
  });

  it('keeps completions without an effect, and skips a line torn by a kill', async () => {
    const first = open();
    await first.store.begin('k3', 'fp', 60_000);
    await first.store.complete('k3', 'fp', record('no effect'), 60_000);
    appendFileSync(path, '{"effect":{"order":"torn"'); // a kill in the middle of a write

    const second = open();
    expect(await second.store.begin('k3', 'fp', 60_000)).toEqual({
      status: 'completed',
      record: record('no effect'),
    });
    await second.store.commit({ order: 'o4' });
    expect(open().charged).toEqual(['o4']);
    expect(readFileSync(path, 'utf8').split('\n').at(-2)).toBe('{"effect":{"order":"o4"}}');
  });
});
