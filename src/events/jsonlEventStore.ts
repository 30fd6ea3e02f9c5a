import { type FileHandle, open, readFile } from 'node:fs/promises';
import { from, type Observable, switchMap } from 'rxjs';
import { z } from 'zod';
import { parseOrThrow } from '../schemas.js';
import {
  type EventFilter,
  type EventStore,
  type NewTxEvent,
  replayLog,
  stampEvent,
  type TxEvent,
} from './eventStore.js';

/**
 * The embedded durable {@link EventStore}: one JSON object a line, appended to a file. Appends are
 * written in order, one at a time; with `fsync: true` each is flushed to disk before `append`
 * resolves. A last line torn by a crash is skipped on replay and cut off before the next append
 * (its `append` never resolved); a bad line anywhere else is an error that names the line. Reading while another part of
 * the process writes is safe: a replay sees the events appended before it started.
 *
 * @example
 * const events = new JsonlEventStore('./data/events.jsonl', { fsync: true });
 * await events.append({ type: 'SagaStarted', transactionId: 'saga-1' });
 * events.read$({ transactionId: 'saga-1' }).subscribe(console.log);
 * await events.close();
 */
const PathSchema = z.string({ error: 'must be a file path' }).min(1, 'must not be empty');
const OptionsSchema = z.strictObject(
  { fsync: z.boolean({ error: 'must be true or false' }).optional() },
  { error: 'must be an object { fsync? }' },
);

export class JsonlEventStore implements EventStore {
  private handle?: Promise<FileHandle>;
  private writes: Promise<unknown> = Promise.resolve();

  readonly path: string;
  private readonly options: { readonly fsync?: boolean };

  /** Throws `MCP_TX_VALIDATION` naming `path` or `options.fsync` when one is wrong; opens nothing yet. */
  constructor(path: string, options: { readonly fsync?: boolean } = {}) {
    this.path = parseOrThrow(PathSchema, path, 'path');
    this.options = parseOrThrow(OptionsSchema, options, 'options');
  }

  /**
   * Appends `event` as one line, after the appends before it; with `fsync: true`, resolves once it is
   * on disk. The first append opens the file (creating it) and cuts off a torn last line.
   */
  append(event: NewTxEvent): Promise<TxEvent> {
    const stored = stampEvent(event);
    const line = `${JSON.stringify(stored)}\n`;
    const written = this.writes.then(async () => {
      const handle = await this.openForAppend();
      await handle.appendFile(line, 'utf8');
      if (this.options.fsync) await handle.sync();
      return stored;
    });
    this.writes = written.catch(() => undefined);
    return written;
  }

  /**
   * Reads the file and replays its events in order (none if the file does not exist yet). Errors
   * naming the line when a line other than a torn last one is not JSON.
   */
  read$(eventFilter?: EventFilter): Observable<TxEvent> {
    return from(this.readAll()).pipe(switchMap((events) => replayLog(events, eventFilter)));
  }

  /** Waits for the appends in flight and closes the file. */
  async close(): Promise<void> {
    await this.writes;
    const handle = await this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private openForAppend(): Promise<FileHandle> {
    this.handle ??= (async () => {
      const handle = await open(this.path, 'a+');
      await dropTornTail(handle);
      return handle;
    })();
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

const TAIL_CHUNK = 64 * 1024;

/** Cuts off a last line that a crash left without its newline. */
async function dropTornTail(handle: FileHandle): Promise<void> {
  const { size } = await handle.stat();
  let end = size;
  const chunk = Buffer.alloc(TAIL_CHUNK);
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    const newline = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (newline !== -1) {
      if (start + newline + 1 < size) await handle.truncate(start + newline + 1);
      return;
    }
    end = start;
  }
  if (size > 0) await handle.truncate(0);
}
