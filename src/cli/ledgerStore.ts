import { appendFileSync, readFileSync } from 'node:fs';
import {
  type BeginOutcome,
  type Completion,
  type EffectStore,
  heldKeyOutcome,
  type IdempotencyRecord,
  type IdempotencyStore,
} from '../idempotency/store.js';

/** How long a completed key is kept: a day (the ledger outlives the runs it serves). */
const LEDGER_WINDOW_MS = 86_400_000;

interface Entry {
  readonly fingerprint: string;
  readonly record?: IdempotencyRecord;
  /** The holder's token while in progress. */
  readonly token?: string;
  readonly expiresAt: number;
}

/** One line of the ledger: an effect, the completion of a key, or both (committed together). */
interface LedgerLine<Effect> {
  readonly effect?: Effect;
  readonly key?: string;
  readonly fingerprint?: string;
  readonly record?: IdempotencyRecord;
  readonly expiresAt?: number;
}

/**
 * An idempotency store and effect store on one append-only JSONL file, for a server that must keep
 * exactly-once across its own crashes (the demo server, the CLI's tests). A commit — an effect with
 * the completion of its key — is one line, appended synchronously before it counts; keys completed
 * without an effect are lines too. Opening the file replays it: `apply` gets every effect again (to
 * rebuild the server's state) and the completed keys answer as duplicates. Keys held in progress
 * live in memory only: a crash lets them go, and as their effect was not written, a retry runs the
 * handler again. A line torn by a kill is skipped. One process per file; it is never compacted.
 *
 * @example
 * const charges: Record<string, number> = {};
 * const store = ledgerStore<{ order: string }>('ledger.jsonl', ({ order }) => {
 *   charges[order] = (charges[order] ?? 0) + 1;
 * });
 * txTool(async ({ order }) => withEffect(answer(order), { order }), { tool: 'charge', store });
 */
export function ledgerStore<Effect>(
  path: string,
  apply: (effect: Effect) => void,
): IdempotencyStore & EffectStore<Effect> {
  const entries = new Map<string, Entry>();
  let holds = 0;
  const write = (line: LedgerLine<Effect>) => appendFileSync(path, `${JSON.stringify(line)}\n`);
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry !== undefined && entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  const completeInMemory = (
    key: string,
    fingerprint: string,
    record: IdempotencyRecord,
    expiresAt: number,
  ) => {
    entries.set(key, { fingerprint, record, expiresAt });
  };

  const text = readLedger(path);
  if (text !== '' && !text.endsWith('\n')) appendFileSync(path, '\n'); // a torn last line stays alone
  for (const line of parseLines<Effect>(text)) {
    if (line.effect !== undefined) apply(line.effect);
    const { key, fingerprint, record, expiresAt } = line;
    if (key !== undefined && fingerprint !== undefined && record !== undefined && expiresAt !== undefined)
      completeInMemory(key, fingerprint, record, expiresAt);
  }

  return {
    windowMs: LEDGER_WINDOW_MS,
    async begin(key, fingerprint, ttlMs): Promise<BeginOutcome> {
      const entry = live(key);
      if (entry === undefined) {
        const token = String(++holds);
        entries.set(key, { fingerprint, token, expiresAt: Date.now() + ttlMs });
        return { status: 'new', token };
      }
      return heldKeyOutcome(entry, fingerprint);
    },
    async complete(key, fingerprint, record, ttlMs) {
      const expiresAt = Date.now() + ttlMs;
      write({ key, fingerprint, record, expiresAt });
      completeInMemory(key, fingerprint, record, expiresAt);
    },
    async release(key, token) {
      const entry = live(key);
      if (entry !== undefined && entry.record === undefined && (token === undefined || token === entry.token))
        entries.delete(key);
    },
    async commit(effect: Effect, completion?: Completion): Promise<boolean> {
      if (completion === undefined) {
        write({ effect });
        apply(effect);
        return true;
      }
      const { key, fingerprint, record, ttlMs, token } = completion;
      const entry = live(key);
      const ours =
        entry !== undefined && entry.record === undefined && (token === undefined || token === entry.token);
      if (!ours) return false;
      const expiresAt = Date.now() + ttlMs;
      write({ effect, key, fingerprint, record, expiresAt });
      completeInMemory(key, fingerprint, record, expiresAt);
      apply(effect);
      return true;
    },
  };
}

function readLedger(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

function parseLines<Effect>(text: string): LedgerLine<Effect>[] {
  return text.split('\n').flatMap((line) => {
    if (line.trim() === '') return [];
    try {
      const parsed = JSON.parse(line) as unknown;
      return typeof parsed === 'object' && parsed !== null ? [parsed as LedgerLine<Effect>] : [];
    } catch {
      return []; // torn by a kill
    }
  });
}
