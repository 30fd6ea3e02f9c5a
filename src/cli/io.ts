/**
 * Where the command line writes, and what it knows about its terminal. The bin entry passes the
 * process's streams; tests pass strings they can read.
 */
export interface CliIo {
  /** Data: results JSONL when there is no `--out`, the demo's report. */
  readonly stdout: (text: string) => void;
  /** People: progress, messages, the summary. */
  readonly stderr: (text: string) => void;
  /** stderr is a terminal: draw a progress bar rather than plain lines. */
  readonly isTTY: boolean;
  /** The terminal's width, when it is one. */
  readonly columns?: number;
  /** Aborted on Ctrl-C or kill: the run stops, keeps its journal, and exits 130. */
  readonly signal?: AbortSignal;
}

/**
 * What a command ended with: 0 all went well, 1 something failed, 2 bad usage, 130 interrupted,
 * 141 stdout closed by its reader (the bin only; 128 + SIGPIPE, as the shell reports such a process).
 *
 * @example
 * return results.every((result) => result.ok) ? ExitCode.Ok : ExitCode.Failed;
 */
export const ExitCode = { Ok: 0, Failed: 1, Usage: 2, Interrupted: 130, OutputClosed: 141 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * A failure the command reports as one message and an exit code, without a stack trace.
 *
 * @example
 * throw new CliError('cannot read --input calls.jsonl: no such file', ExitCode.Usage);
 */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.Failed,
  ) {
    super(message);
  }
}

/**
 * An error's message and its cause's, on one line, for a report.
 *
 * @example
 * errorText(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') }));
 * // 'fetch failed (connect ECONNREFUSED 127.0.0.1:9)'
 */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}
