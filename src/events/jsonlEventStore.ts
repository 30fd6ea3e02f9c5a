import { type FileHandle, open, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { defer, type Observable, switchMap } from 'rxjs';
import { z } from 'zod';
import { parseOrThrow } from '../config/validators.js';
import { TxError, TxErrorCode } from '../core/errors.js';
import {
  type EventFilter,
  type EventStore,
  type NewTxEvent,
  replayLog,
  stampEvent,
  type TxEvent,
} from './eventStore.js';

const PathSchema = z.string({ error: 'must be a file path' }).min(1, 'must not be empty');
const OptionsSchema = z.strictObject(
  { fsync: z.boolean({ error: 'must be true or false' }).optional() },
  { error: 'must be an object { fsync? }' },
);

/**
 * The embedded durable {@link EventStore}: one JSON object a line, appended to a file. Appends are
 * written in order, one at a time per file in the process (whichever instance makes them), each line
 * with one write; with `fsync: true` each is flushed to disk before `append` resolves. A last line
 * torn by a crash is skipped on replay and cut off before the next append (its `append` never
 * resolved); a bad line anywhere else is an error that names the line. Reading while the process
 * writes is safe: a replay sees the events appended before it started.
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
  private writes: Promise<unknown> = Promise.resolve();
  private closing?: Promise<void>;

  readonly path: string;
  private readonly options: { readonly fsync?: boolean };

  /** Throws `MCP_TX_VALIDATION` naming `path` or `options.fsync` when one is wrong; opens nothing yet. */
  constructor(path: string, options: { readonly fsync?: boolean } = {}) {
    this.path = parseOrThrow(PathSchema, path, 'path');
    this.options = parseOrThrow(OptionsSchema, options, 'options');
  }

  /**
   * Appends `event` as one line, after the appends made before it to the same file in this process;
   * with `fsync: true`, resolves once it is on disk. The first append opens the file (creating it); each cuts off a torn last line first.
   * After `close()` it rejects with `MCP_TX_STORE_UNAVAILABLE` (not retryable).
   */
  append(event: NewTxEvent): Promise<TxEvent> {
    if (this.closing) {
      return Promise.reject(
        new TxError(TxErrorCode.StoreUnavailable, `Event store ${this.path} is closed: append refused`),
      );
    }
    const stored = stampEvent(event);
    const line = Buffer.from(`${JSON.stringify(stored)}\n`, 'utf8');
    const written = afterAppendsTo(resolve(this.path), async () => {
      const handle = await this.openForAppend();
      await dropTornTail(handle);
      await writeWhole(handle, line);
      if (this.options.fsync) await handle.sync();
      return stored;
    });
    this.writes = written.catch(() => undefined);
    return written;
  }

  /**
   * Replays the events in order, reading the file when subscribed (afresh on each subscription;
   * none if the file does not exist yet). Errors naming the line when a line other than a torn last
   * one is not JSON.
   */
  read$(eventFilter?: EventFilter): Observable<TxEvent> {
    return defer(() => this.readAll()).pipe(switchMap((events) => replayLog(events, eventFilter)));
  }

  /** Waits for the appends made before it and closes the file; appends after it are refused. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writes;
      const handle = await this.handle;
      this.handle = undefined;
      await handle?.close();
    })();
    return this.closing;
  }

  private openForAppend(): Promise<FileHandle> {
    this.handle ??= open(this.path, 'a+').catch((error: unknown) => {
      this.handle = undefined; // the next append tries again
      throw error;
    });
    return this.handle;
  }

  private async readAll(): Promise<TxEvent[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const lines = text.split('\n');
    const events: TxEvent[] = [];
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      try {
        events.push(JSON.parse(line) as TxEvent);
      } catch (error) {
        const isTornTail = index === lines.length - 1; // no newline after it: a write cut short
        if (!isTornTail) throw new Error(`${this.path}:${index + 1}: not a JSON event (${String(error)})`);
      }
    });
    return events;
  }
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
const TAIL_CHUNK = 64 * 1024;

/** Cuts off a last line left without its newline (a write cut short by a crash or a full disk). */
async function dropTornTail(handle: FileHandle): Promise<void> {
  const { size } = await handle.stat();
  if (size === 0) return;
  const { buffer: last } = await handle.read(Buffer.alloc(1), 0, 1, size - 1);
  if (last[0] !== NEWLINE) await handle.truncate(await endOfLastLine(handle, size));
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
