import { lastValueFrom, toArray } from 'rxjs';
import { newRequestId } from '../core/ids.js';
import type { TxMeta } from '../core/types.js';
import { JsonlEventStore } from '../events/jsonlEventStore.js';
import { fingerprint } from '../idempotency/fingerprint.js';
import type { BatchLine } from './input.js';
import { CliError, ExitCode, errorText } from './io.js';

/** One line of the results JSONL: how one input line ended. */
export interface ResultLine {
  readonly line: number;
  /** Absent when the line was not a call. */
  readonly tool?: string;
  readonly ok: boolean;
  readonly data?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  readonly meta?: TxMeta;
  /** Finished in an earlier run, re-emitted from the journal without calling again. */
  readonly fromJournal?: true;
}

const OPENED = 'BatchJournalOpened';
const FINISHED = 'BatchLineFinished';

interface FinishedEntry {
  readonly line: number;
  readonly key: string;
  readonly fingerprint: string;
  readonly result: ResultLine;
}

/**
 * The batch's memory across runs: an append-only JSONL event log (a {@link JsonlEventStore},
 * flushed to disk per line) that records each finished line with its idempotency key and result. A
 * re-run with the same journal skips the lines that completed and re-emits their results; lines
 * that failed run again, as they are now (fixed, maybe). Lines without an `idempotency_key` get one
 * derived from the journal's id and their line number, the same in every run, so that a call cut
 * short by a crash and sent again is deduped by an MCP-Tx server. Without a file, the journal lives for one run (keys still derived).
 *
 * @example
 * const journal = await BatchJournal.open('run.journal.jsonl', lines);
 * const pending = lines.filter((line) => !journal.finished(line));
 * await journal.record(line, result);
 */
export class BatchJournal {
  private constructor(
    /** The journal's id: part of every derived idempotency key. */
    readonly id: string,
    private readonly done: ReadonlyMap<number, ResultLine>,
    private readonly store?: JsonlEventStore,
  ) {}

  /**
   * Opens (or starts) the journal at `path` for `lines`. Throws a {@link CliError} when the file is
   * not a batch journal or completed other calls under the same line numbers (the input changed).
   */
  static async open(path: string | undefined, lines: readonly BatchLine[]): Promise<BatchJournal> {
    if (path === undefined) return new BatchJournal(newRequestId(), new Map());
    const store = new JsonlEventStore(path, { fsync: true });
    const events = await lastValueFrom(store.read$().pipe(toArray())).catch((error: unknown) => {
      throw new CliError(`cannot read --journal ${path}: ${errorText(error)}`);
    });
    if (events.length === 0) {
      const id = newRequestId();
      await store.append({ type: OPENED, transactionId: id });
      return new BatchJournal(id, new Map(), store);
    }
    const id = events[0]?.type === OPENED ? events[0].transactionId : undefined;
    if (id === undefined)
      throw new CliError(`--journal ${path} is not an mcp-tx batch journal`, ExitCode.Usage);
    const entries = events
      .filter((event) => event.type === FINISHED)
      .map((event) => event.data as unknown as FinishedEntry);
    return new BatchJournal(id, completedLines(path, entries, lines), store);
  }

  /** The idempotency key of a line: its own, or one derived from the journal id and line number. */
  keyOf(line: BatchLine): string {
    return line.idempotencyKey ?? `batch-${this.id}-line-${line.line}`;
  }

  /** The result of `line` if it completed in an earlier run. */
  finished(line: BatchLine): ResultLine | undefined {
    return this.done.get(line.line);
  }

  /** Records how `line` ended; resolves once it is on disk. */
  async record(line: BatchLine, result: ResultLine): Promise<void> {
    const entry: FinishedEntry = {
      line: line.line,
      key: this.keyOf(line),
      fingerprint: callPrint(line),
      result,
    };
    await this.store?.append({ type: FINISHED, transactionId: this.id, data: { ...entry } });
  }

  /** Waits for the records being written and closes the file. */
  async close(): Promise<void> {
    await this.store?.close();
  }
}

/**
 * The results of the lines that completed and are still in the input: each line's last entry, if it
 * is a success. A completed line must be the same call as in the input; a failed one may have been
 * fixed since, and runs again whatever it is now.
 */
function completedLines(
  path: string,
  entries: readonly FinishedEntry[],
  lines: readonly BatchLine[],
): Map<number, ResultLine> {
  const lastEntries = new Map(entries.map((entry) => [entry.line, entry]));
  const done = new Map<number, ResultLine>();
  for (const line of lines) {
    const entry = lastEntries.get(line.line);
    if (entry === undefined || !entry.result.ok) continue;
    if (entry.fingerprint !== callPrint(line)) {
      throw new CliError(
        `--journal ${path} recorded another call on line ${line.line} (the input changed); use a new journal`,
        ExitCode.Usage,
      );
    }
    done.set(line.line, { ...entry.result, fromJournal: true });
  }
  return done;
}

function callPrint(line: BatchLine): string {
  return fingerprint({ tool: line.tool, arguments: line.arguments, key: line.idempotencyKey ?? null });
}
