import { type FileHandle, open, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { defer, type Observable, switchMap } from 'rxjs';
import * as z from 'zod';
import { parseOrThrow } from '../config/validators.js';
import { TxError, TxErrorCode } from '../core/errors.js';
import {
  type EventFilter,
  type EventStore,
  type NewTxEvent,
  replayLog,
  stampEvent,
  type TxEvent,
  TxEventSchema,
} from './eventStore.js';

const PathSchema = z.string({ error: 'must be a file path' }).min(1, 'must not be empty');
const OptionsSchema = z.strictObject(
  { fsync: z.boolean({ error: 'must be true or false' }).optional() },
  { error: 'must be an object { fsync? }' },
);

/**
 * The embedded durable {@link EventStore}: one JSON object a line, appended to a file. Appends are
 * written in order, one at a time per file in the process (whichever instance makes them), each line
 * with one write; with `fsync: true` each is flushed to disk before `append` resolves. Reading while
 * the process writes is safe: a replay sees the events appended before it started.
 *
 * What a line is, on replay and before an append alike (`judgeLine`): a line that parses as
 * JSON is a line, and must be an event ({@link TxEventSchema}); a last line that does not parse and
 * has no newline after it is a write cut short (a crash, a full disk): skipped on replay, cut off
 * before the next append (its `append` never resolved). A last line that parses but lost its newline
 * is an event: replayed, and the next append writes the missing newline first. So what `read$`
 * returned is never removed.
 *
 * A bad line (not JSON, or not an event) anywhere else makes `read$` fail with a non-retryable
 * `MCP_TX_STORE_UNAVAILABLE` naming `path:line` and what is wrong. From then on, appends to that file
 * from this process are refused (same code), so that nothing is written after a line no one can
 * replay. To repair: fix or remove the named line (or move the file away to start a new log), then
 * call {@link JsonlEventStore.verify} — or replay it with `read$` — on any store of that file: once a
 * whole read succeeds, appends resume. A new process knows nothing of an earlier failure: read
 * before appending (`Saga` and the batch journal do).
 *
 * One writing process per file (readers may be many). Nothing enforces it: a lock file left behind
 * by a crash would keep the log shut until someone removed it. A second process appending to the
 * same file may lose a line: an append cuts what looks like a torn last line, and a long line
 * (over a page) another process is writing at that moment looks like one.
 *
 * @example
 * const events = new JsonlEventStore('./data/events.jsonl', { fsync: true });
 * await events.append({ type: 'SagaStarted', transactionId: 'saga-1' });
 * events.read$({ transactionId: 'saga-1' }).subscribe(console.log);
 * await events.close();
 */
export class JsonlEventStore implements EventStore {
  private handle?: Promise<FileHandle>;
  /** The file's repair count when {@link handle} was opened: after a repair, the file is opened afresh. */
  private handleRepair = 0;
  private writes: Promise<unknown> = Promise.resolve();
  private closing?: Promise<void>;

  readonly path: string;
  private readonly file: string;
  private readonly options: { readonly fsync?: boolean };

  /** Throws `MCP_TX_VALIDATION` naming `path` or `options.fsync` when one is wrong; opens nothing yet. */
  constructor(path: string, options: { readonly fsync?: boolean } = {}) {
    this.path = parseOrThrow(PathSchema, path, 'path');
    this.options = parseOrThrow(OptionsSchema, options, 'options');
    this.file = resolve(this.path);
  }

  /**
   * Appends `event` as one line, after the appends made before it to the same file in this process;
   * with `fsync: true`, resolves once it is on disk. The first append opens the file (creating it).
   * Each first repairs the end of the file: cuts off a torn last line, or writes the newline a
   * complete last line lacks. Rejects with a non-retryable `MCP_TX_STORE_UNAVAILABLE` after `close()`,
   * and while the log cannot be replayed (a `read$` failed on a bad line, or the last line is one;
   * see the class notes for the repair).
   */
  append(event: NewTxEvent): Promise<TxEvent> {
    if (this.closing) {
      return Promise.reject(
        new TxError(TxErrorCode.StoreUnavailable, `Event store ${this.path} is closed: append refused`),
      );
    }
    const stored = stampEvent(event);
    const line = Buffer.from(`${JSON.stringify(stored)}\n`, 'utf8');
    const written = afterAppendsTo(this.file, async () => {
      const damage = damagedLogs.get(this.file);
      if (damage !== undefined) throw appendRefused(this.path, damage);
      const handle = await this.openForAppend();
      const tail = await repairTail(handle);
      if (tail === 'bad') {
        const found = await this.readAll().then(
          () => undefined,
          () => damagedLogs.get(this.file),
        );
        throw appendRefused(this.path, found ?? { line: 'last', problem: 'not an event' });
      }
      await writeWhole(handle, tail === 'needs newline' ? Buffer.concat([NEWLINE_BYTES, line]) : line);
      if (this.options.fsync) await handle.sync();
      return stored;
    });
    this.writes = written.catch(() => undefined);
    return written;
  }

  /**
   * Replays the events in order, reading the file when subscribed (afresh on each subscription;
   * none if the file does not exist yet). Errors with a non-retryable `MCP_TX_STORE_UNAVAILABLE`
   * naming `path:line` when a line is not JSON or not an event (a torn last line is skipped); appends
   * are then refused until the log is repaired.
   */
  read$(eventFilter?: EventFilter): Observable<TxEvent> {
    return defer(() => this.readAll()).pipe(switchMap((events) => replayLog(events, eventFilter)));
  }

  /**
   * Reads the whole log and checks every line: resolves with the number of events, and lets appends
   * refused since a read failed go on again (the repaired file is opened afresh); rejects, as
   * `read$` does, naming the first bad line. The way to resume after repairing a log by hand.
   *
   * @example
   * // events.jsonl:17 was fixed (or removed) in an editor
   * await events.verify(); // 41
   * await events.append({ type: 'Resumed' });
   */
  async verify(): Promise<number> {
    return (await this.readAll()).length;
  }

  /** Waits for the appends made before it and closes the file; appends after it are refused. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writes;
      const handle = await this.handle?.catch(() => undefined);
      this.handle = undefined;
      await handle?.close();
    })();
    return this.closing;
  }

  private async openForAppend(): Promise<FileHandle> {
    const repairs = repairsOf.get(this.file) ?? 0;
    if (this.handle !== undefined && this.handleRepair !== repairs) {
      // repaired since it was opened, maybe by writing a new file in its place: open that one
      const stale = this.handle;
      this.handle = undefined;
      await (await stale.catch(() => undefined))?.close();
    }
    if (this.handle === undefined) {
      this.handleRepair = repairs;
      this.handle = open(this.path, 'a+').catch((error: unknown) => {
        this.handle = undefined; // the next append tries again
        throw error;
      });
    }
    return this.handle;
  }

  /** All the events of the file; marks it damaged (appends refused) or sound again. */
  private async readAll(): Promise<TxEvent[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      text = '';
    }
    const lines = text.split('\n');
    const events: TxEvent[] = [];
    for (const [index, line] of lines.entries()) {
      const verdict = judgeLine(line, index < lines.length - 1);
      if (verdict.kind === 'event') events.push(verdict.event);
      else if (verdict.kind === 'bad') {
        const damage = { line: index + 1, problem: verdict.problem };
        damagedLogs.set(this.file, damage);
        throw unreadable(this.path, damage);
      }
    }
    if (damagedLogs.delete(this.file)) repairsOf.set(this.file, (repairsOf.get(this.file) ?? 0) + 1);
    return events;
  }
}

/** What a line of a log is: see {@link judgeLine}. */
type LineVerdict =
  | { readonly kind: 'event'; readonly event: TxEvent }
  | { readonly kind: 'blank' }
  | { readonly kind: 'torn' }
  | { readonly kind: 'bad'; readonly problem: string };

const BOM = '\uFEFF';
const BLANK: LineVerdict = { kind: 'blank' };
const TORN: LineVerdict = { kind: 'torn' };

/**
 * The one rule for a line of a JSONL log, used by replay and by the tail repair before an append.
 * `terminated`: a newline follows it. A line that parses as JSON is a line — an event if
 * {@link TxEventSchema} accepts it, else bad — newline or not (a write cut short cannot parse: every
 * event line is an object, and no strict prefix of an object is JSON). A last line that does not
 * parse is torn (skipped, cut before the next append); one followed by a newline is bad. Blank
 * lines are skipped.
 */
function judgeLine(text: string, terminated: boolean): LineVerdict {
  if (text.trim() === '') return terminated ? BLANK : TORN;
  let value: unknown;
  try {
    value = JSON.parse(text.startsWith(BOM) ? text.slice(1) : text); // an editor's byte order mark
  } catch {
    return terminated ? { kind: 'bad', problem: 'not JSON' } : TORN;
  }
  const parsed = TxEventSchema.safeParse(value);
  if (parsed.success) return { kind: 'event', event: Object.freeze(value as TxEvent) }; // as written, key order too
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') ?? '';
  return {
    kind: 'bad',
    problem: `not an event: ${field === '' ? 'the line' : field} ${issue?.message ?? 'is invalid'}`,
  };
}

/** Why a log cannot be replayed: its first bad line. */
interface Damage {
  readonly line: number | 'last';
  readonly problem: string;
}

/** The logs (by absolute path) a read found a bad line in, in this process: appends refused until repaired. */
const damagedLogs = new Map<string, Damage>();
/** How many times each log was found sound again after a bad line (an instance then reopens the file). */
const repairsOf = new Map<string, number>();

function unreadable(path: string, { line, problem }: Damage): TxError {
  return new TxError(
    TxErrorCode.StoreUnavailable,
    `Event log ${path}:${line}: ${problem}; appends to it are refused until it is repaired ` +
      '(fix or remove that line, then call verify())',
  );
}

function appendRefused(path: string, { line, problem }: Damage): TxError {
  return new TxError(
    TxErrorCode.StoreUnavailable,
    `Event log ${path}:${line}: ${problem}; append refused, so that nothing is written after a line ` +
      'no one can replay. Repair the log: fix or remove that line (or move the file away), then call ' +
      'verify() on a JsonlEventStore of it',
  );
}

/** The last append queued to each file (by absolute path) in this process, by any instance. */
const lastAppendTo = new Map<string, Promise<unknown>>();

/** Runs `append` once the appends queued to `file` before it have settled. */
function afterAppendsTo<T>(file: string, append: () => Promise<T>): Promise<T> {
  const appended = (lastAppendTo.get(file) ?? Promise.resolve()).then(append);
  const settled = appended.catch(() => undefined);
  lastAppendTo.set(file, settled);
  void settled.then(() => {
    if (lastAppendTo.get(file) === settled) lastAppendTo.delete(file);
  });
  return appended;
}

/** Writes all of `bytes` at the end of the file: one write, more only if the system writes less. */
async function writeWhole(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

const NEWLINE = 0x0a;
const NEWLINE_BYTES = Buffer.from('\n');
const TAIL_CHUNK = 64 * 1024;

/**
 * Readies the end of the file for an append, by {@link judgeLine}: a last line without its newline
 * is cut off if torn (`'ok'`), kept if it is an event (`'needs newline'`: the append writes it
 * first); `'bad'` if it is JSON but not an event (nothing changed).
 */
async function repairTail(handle: FileHandle): Promise<'ok' | 'needs newline' | 'bad'> {
  const { size } = await handle.stat();
  if (size === 0) return 'ok';
  const { buffer: last } = await handle.read(Buffer.alloc(1), 0, 1, size - 1);
  if (last[0] === NEWLINE) return 'ok';
  const start = await endOfLastLine(handle, size);
  const { buffer: tail } = await handle.read(Buffer.alloc(size - start), 0, size - start, start);
  const verdict = judgeLine(tail.toString('utf8'), false);
  if (verdict.kind === 'event') return 'needs newline';
  if (verdict.kind === 'bad') return 'bad';
  await handle.truncate(start);
  return 'ok';
}

/** Where the last whole line of the first `size` bytes ends (0 if there is none). */
async function endOfLastLine(handle: FileHandle, size: number): Promise<number> {
  const chunk = Buffer.alloc(TAIL_CHUNK);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    const newline = chunk.subarray(0, bytesRead).lastIndexOf(NEWLINE);
    if (newline !== -1) return start + newline + 1;
    end = start;
  }
  return 0;
}
