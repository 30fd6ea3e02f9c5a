import cliProgress from 'cli-progress';
import type { CliIo } from './io.js';

/** Reports lines finishing: a bar on a terminal, plain lines every tenth of the way otherwise. */
export interface Progress {
  /** One more line finished. */
  tick(ok: boolean): void;
  /** Clears the bar's line before something else is printed on the terminal. */
  clearLine(): void;
  /** Draws the last state and lets go of the terminal. */
  stop(): void;
}

/** How long plain progress may stay silent while lines keep finishing. */
const PLAIN_MAX_SILENCE_MS = 2_000;

/** Lines finished so far, and the rate of those run in this process. */
class Tally {
  private ran = 0;
  private readonly startedAt = Date.now();

  constructor(
    readonly total: number,
    public done: number,
    public failed: number,
  ) {}

  add(ok: boolean): void {
    this.done += 1;
    this.ran += 1;
    if (!ok) this.failed += 1;
  }

  /** Lines per second run in this process. */
  get rate(): number {
    return Math.round(this.ran / Math.max(0.001, (Date.now() - this.startedAt) / 1_000));
  }
}

/**
 * Starts reporting progress over `total` lines, of which `done` are already finished (from a
 * journal, or not calls at all) and `failed` of those failed. On a terminal (`io.isTTY`) it draws a cli-progress bar on stderr; otherwise it prints a
 * plain line each time another tenth of the lines is done (or 2 s went by), and one at the end.
 *
 * @example
 * const progress = startProgress(io, 'batch', lines.length);
 * progress.tick(result.ok);
 * progress.stop();
 */
export function startProgress(
  io: CliIo,
  label: string,
  total: number,
  already: { readonly done: number; readonly failed: number } = { done: 0, failed: 0 },
): Progress {
  const tally = new Tally(total, already.done, already.failed);
  return io.isTTY ? barProgress(io, label, tally) : plainProgress(io, label, tally);
}

/**
 * What cli-progress writes to save the cursor when a bar starts and to jump back there when it stops.
 * Dropped: results printed on the same terminal meanwhile are below that point, and the summary
 * would be written over them.
 */
const CURSOR_SAVE_RESTORE: ReadonlySet<string> = new Set(['\x1b7', '\x1b8']);

function barProgress(io: CliIo, label: string, tally: Tally): Progress {
  const terminal = {
    isTTY: true,
    columns: io.columns ?? 80,
    write: (text: string) => {
      if (!CURSOR_SAVE_RESTORE.has(text)) io.stderr(text);
      return true;
    },
  };
  const bar = new cliProgress.SingleBar(
    {
      stream: terminal as unknown as NodeJS.WritableStream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {failed} failed | {rate}/s | ETA {eta_formatted}`,
      barsize: 30,
      forceRedraw: true,
      gracefulExit: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = () => ({ failed: tally.failed, rate: tally.rate });
  bar.start(tally.total, tally.done, payload());
  return {
    tick(ok) {
      tally.add(ok);
      bar.update(tally.done, payload());
    },
    clearLine() {
      io.stderr('\r\x1b[2K');
    },
    stop() {
      bar.update(tally.done, payload());
      bar.stop();
    },
  };
}

function plainProgress(io: CliIo, label: string, tally: Tally): Progress {
  const step = Math.max(1, Math.ceil(tally.total / 10));
  let printedDone = -1;
  let printedAt = Date.now();
  const print = () => {
    const percent = tally.total === 0 ? 100 : Math.floor((tally.done * 100) / tally.total);
    io.stderr(
      `${label}: ${tally.done}/${tally.total} (${percent}%), ${tally.failed} failed, ${tally.rate}/s\n`,
    );
    printedDone = tally.done;
    printedAt = Date.now();
  };
  return {
    tick(ok) {
      tally.add(ok);
      const crossedStep = Math.floor(tally.done / step) > Math.floor(printedDone / step);
      if (crossedStep || Date.now() - printedAt >= PLAIN_MAX_SILENCE_MS) print();
    },
    clearLine() {
      // Plain lines end with a newline: nothing to clear.
    },
    stop() {
      if (printedDone !== tally.done) print();
    },
  };
}
