/**
 * `mcp-tx batch`: flags, the run (journal, progress, results in order) and its exit code. Just over
 * 300 lines: the run's steps share the journal and the output streams; input, connection, journal,
 * progress and summary are in their own files.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { catchError, concatMap, from, map, mergeMap, type Observable, of, tap } from 'rxjs';
import * as z from 'zod';
import type { McpTx } from '../client/mcpTx.js';
import type { TxConfig } from '../client/options.js';
import { MAX_TIMEOUT_MS } from '../config/validators.js';
import { TxError } from '../core/errors.js';
import { tokenBucket } from '../limiter/tokenBucket.js';
import { openMcpTx, type ServerTarget, serverConnection, splitCommand, watchConnection } from './connect.js';
import { type BatchLine, parseInput } from './input.js';
import { CliError, type CliIo, ExitCode, errorText } from './io.js';
import { BatchJournal, type ResultLine } from './journal.js';
import { startProgress } from './progress.js';
import { formatSummary, summarize } from './summary.js';

const wholeNumber = () => z.coerce.number({ message: 'must be a number' }).int('must be a whole number');
const milliseconds = (min: number) =>
  wholeNumber().min(min, `must be at least ${min}`).max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS}`);
/** The slowest `--rate`: one attempt every 100 s. */
const MIN_RATE = 0.01;

/**
 * The options of `mcp-tx batch`, as commander hands them over (strings), checked and converted:
 * exactly one of `stdio` (a command {@link splitCommand} can split) and `url` (no credentials: fetch
 * refuses them); `out` and `journal` other files than `input` and than each other.
 *
 * @example
 * parseOrThrow(BatchOptionsSchema, { input: 'calls.jsonl', url: 'http://127.0.0.1:3000/mcp', concurrency: '4' }, '');
 */
export const BatchOptionsSchema = z
  .strictObject({
    input: z.string().min(1, 'must name a file'),
    out: z.string().min(1, 'must name a file').optional(),
    stdio: z.string().trim().min(1, 'must not be empty').superRefine(splitsAsCommand).optional(),
    url: z
      .string()
      .refine(
        (value) => /^https?:\/\/./.test(value) && URL.canParse(value),
        'must be an http:// or https:// URL',
      )
      .refine(
        (value) => !hasCredentials(value),
        'must not contain a user name or password (fetch refuses them)',
      )
      .optional(),
    concurrency: wholeNumber().min(1, 'must be at least 1').max(10_000, 'must be at most 10000').default(8),
    rate: z.coerce
      .number({ message: 'must be a number' })
      .min(MIN_RATE, `must be at least ${MIN_RATE} (one attempt every ${1 / MIN_RATE} s)`)
      .finite('must be finite')
      .optional(),
    retry: wholeNumber().min(0, 'must be at least 0').max(999, 'must be at most 999').default(2),
    retryDelay: milliseconds(0).default(1_000),
    timeout: milliseconds(1).default(30_000),
    journal: z.string().min(1, 'must name a file').optional(),
  })
  .refine((options) => (options.stdio === undefined) !== (options.url === undefined), {
    message: 'give exactly one of --stdio <command> or --url <url>',
    path: ['stdio'],
  })
  .refine((options) => !sameFile(options.out, options.input), {
    message: 'must not be the --input file',
    path: ['out'],
  })
  .refine((options) => !sameFile(options.out, options.journal), {
    message: 'must not be the --journal file',
    path: ['out'],
  })
  .refine((options) => !sameFile(options.journal, options.input), {
    message: 'must not be the --input file',
    path: ['journal'],
  });
export type BatchOptions = z.output<typeof BatchOptionsSchema>;

function splitsAsCommand(line: string, context: z.RefinementCtx): void {
  try {
    splitCommand(line);
  } catch (error) {
    context.addIssue({ code: 'custom', message: errorText(error) });
  }
}

/** The URL names a user or a password (`http://user:pass@host`). */
function hasCredentials(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { username, password } = new URL(url);
  return username !== '' || password !== '';
}

/** Both paths given, and the same file (as far as the paths tell). */
function sameFile(path: string | undefined, other: string | undefined): boolean {
  return path !== undefined && other !== undefined && resolve(path) === resolve(other);
}

/**
 * `mcp-tx batch`: runs every call of a JSONL file through `tx.call$`'s default pipeline (retry,
 * dedupe; throttle with `--rate`), `--concurrency` at a time, and writes one result line per input
 * line, in the order they finish. With `--journal`, a re-run skips the lines that completed. A
 * server that cannot be reached at the start stops the run (exit 1); one that goes away later (a
 * `--stdio` server that exits is started again) is reconnected to and the run carries on.
 * Resolves with the exit code: 1 if any line failed or was not a call.
 *
 * @example
 * const code = await runBatch(parseOrThrow(BatchOptionsSchema, { input: 'calls.jsonl', url: 'http://127.0.0.1:3000/mcp' }, ''), io);
 */
export async function runBatch(options: BatchOptions, io: CliIo): Promise<ExitCode> {
  const { lines, bad } = parseInput(await readInput(options.input));
  for (const { line, message } of bad) io.stderr(`mcp-tx: ${options.input}:${line}: ${message}\n`);
  const total = lines.length + bad.length;
  const journal = await BatchJournal.open(options.journal, lines);
  const resumed = lines.flatMap((line) => journal.finished(line) ?? []);
  const pending = lines.filter((line) => journal.finished(line) === undefined);
  const results: ResultLine[] = [];
  let run: PendingRun = { outcome: 'done', elapsedMs: 0, reconnects: 0 };
  try {
    const output = openOutput(options.out, io);
    const progress = startProgress(io, 'batch', total, { done: total - pending.length, failed: bad.length });
    const write = (result: ResultLine) => {
      results.push(result);
      if (output.sharesTerminal) progress.clearLine();
      output.write(`${JSON.stringify(result)}\n`);
    };
    try {
      for (const { line, message } of bad)
        write({ line, ok: false, error: { code: 'MCP_TX_VALIDATION', message } });
      for (const result of resumed) write(result);
      if (pending.length > 0) {
        const notice = (text: string) => {
          progress.clearLine();
          io.stderr(`mcp-tx: ${text}\n`);
        };
        run = await runPending(options, pending, journal, io, notice, (result) => {
          write(result);
          progress.tick(result.ok);
        });
      }
    } finally {
      progress.stop();
      output.close();
    }
  } finally {
    await journal.close();
  }
  io.stderr(formatSummary({ ...summarize(results, run.elapsedMs), reconnects: run.reconnects }));
  if (run.outcome === 'interrupted') {
    const hint =
      options.journal === undefined
        ? 'use --journal to make a run resumable'
        : `run again with --journal ${options.journal} to finish`;
    io.stderr(`mcp-tx: interrupted with ${results.length} of ${total} lines finished; ${hint}\n`);
    return ExitCode.Interrupted;
  }
  return results.every((result) => result.ok) ? ExitCode.Ok : ExitCode.Failed;
}

/**
 * Connects to the server the flags name and runs the lines left to run; says how long the calls
 * took and how many times the connection was made again. A server that goes away mid-run (a
 * `--stdio` server that exits, an HTTP session that expires) is connected to again and the run
 * carries on: the calls cut short are sent again when that is safe (always, with the journal's
 * keys, on an MCP-Tx server). `notice` tells what happened to the connection.
 */
async function runPending(
  options: BatchOptions,
  pending: readonly BatchLine[],
  journal: BatchJournal,
  io: CliIo,
  notice: (text: string) => void,
  onResult: (result: ResultLine) => void,
): Promise<PendingRun> {
  const target: ServerTarget =
    options.url === undefined ? { stdio: options.stdio as string } : { url: options.url };
  const server = serverConnection(target);
  const tx = await openMcpTx(server, batchConfig(options), { timeoutMs: options.timeout, signal: io.signal });
  let reconnects = 0;
  const watching = watchConnection(tx, server, (text) => {
    if (text.startsWith('reconnected')) reconnects += 1;
    notice(text);
  });
  const startedAt = Date.now();
  try {
    const { concurrency } = options;
    const outcome = await runLines(tx, pending, { concurrency, journal, signal: io.signal }, onResult);
    return { outcome, elapsedMs: Date.now() - startedAt, reconnects };
  } finally {
    watching.unsubscribe();
    await tx.close({ timeoutMs: 1_000 });
  }
}

/** How the lines left to run went: how the run ended, how long the calls took, reconnects made. */
interface PendingRun {
  readonly outcome: RunOutcome;
  readonly elapsedMs: number;
  readonly reconnects: number;
}

/** The pipeline's config from the flags: `--retry` retries after the first attempt, `--rate` a token bucket. */
function batchConfig(options: BatchOptions): TxConfig {
  const { rate, retry, retryDelay, timeout } = options;
  return {
    timeoutMs: timeout,
    retry:
      retry === 0
        ? false
        : { maxAttempts: retry + 1, baseDelayMs: retryDelay, maxDelayMs: Math.max(30_000, retryDelay) },
    limiter:
      rate === undefined
        ? undefined
        : tokenBucket({ ratePerSecond: rate, burst: Math.max(1, Math.ceil(rate / 10)) }),
  };
}

/** How a run of lines ended: every line finished, or the run was interrupted. */
export type RunOutcome = 'done' | 'interrupted';

/**
 * Runs `lines` through `tx.call$`, `concurrency` at a time, each with its idempotency key from the
 * journal; records each finished line in the journal, then hands its result to `onResult`. A failed
 * call is a result too (`ok: false`), never an error of the run; `onResult` throwing (results that
 * cannot be written) is: the calls in flight are cancelled and the promise rejects with its error.
 * Aborting `signal` cancels the calls in flight and resolves `'interrupted'`.
 *
 * @example
 * await runLines(tx, lines, { concurrency: 8, journal }, (result) => console.log(JSON.stringify(result)));
 */
export function runLines(
  tx: McpTx,
  lines: readonly BatchLine[],
  options: { readonly concurrency: number; readonly journal: BatchJournal; readonly signal?: AbortSignal },
  onResult: (result: ResultLine) => void,
): Promise<RunOutcome> {
  const { concurrency, journal, signal } = options;
  const results$ = from(lines).pipe(
    mergeMap(
      (line) =>
        callLine(tx, line, journal.keyOf(line)).pipe(
          concatMap(async (result) => {
            await journal.record(line, result);
            return result;
          }),
        ),
      concurrency,
    ),
    tap(onResult),
  );
  return new Promise<RunOutcome>((resolve, reject) => {
    if (signal?.aborted) return resolve('interrupted');
    const subscription = results$.subscribe({
      error: reject,
      complete: () => resolve('done'),
    });
    signal?.addEventListener(
      'abort',
      () => {
        subscription.unsubscribe();
        resolve('interrupted');
      },
      { once: true },
    );
  });
}

function callLine(tx: McpTx, line: BatchLine, idempotencyKey: string): Observable<ResultLine> {
  return tx.call$(line.tool, line.arguments, { idempotencyKey }).pipe(
    map(({ data, meta }): ResultLine => ({ line: line.line, tool: line.tool, ok: true, data, meta })),
    catchError((error: unknown) => of(failedLine(line, error))),
  );
}

function failedLine(line: BatchLine, error: unknown): ResultLine {
  const failed = { line: line.line, tool: line.tool, ok: false } as const;
  if (!(error instanceof TxError)) return { ...failed, error: { code: 'ERROR', message: errorText(error) } };
  const result = { ...failed, error: { code: error.code, message: error.message } };
  return error.meta === undefined ? result : { ...result, meta: error.meta };
}

async function readInput(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read --input ${path}: ${errorText(error)}`, ExitCode.Usage);
  }
}

/**
 * Where results go: the `--out` file (rewritten each run), else stdout. A write that fails (disk
 * full) throws a {@link CliError} saying where.
 */
function openOutput(path: string | undefined, io: CliIo) {
  if (path === undefined) {
    return { sharesTerminal: io.isTTY, write: failingAs('stdout', io.stdout), close: () => undefined };
  }
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (error) {
    throw new CliError(`cannot write --out ${path}: ${errorText(error)}`, ExitCode.Usage);
  }
  return {
    sharesTerminal: false,
    write: failingAs(`--out ${path}`, (text) => writeSync(fd, text)),
    close: () => closeSync(fd),
  };
}

/** `write`, throwing a {@link CliError} that names `where` when it fails. */
function failingAs(where: string, write: (text: string) => unknown): (text: string) => void {
  return (text) => {
    try {
      write(text);
    } catch (error) {
      throw new CliError(`cannot write ${where}: ${errorText(error)}`);
    }
  };
}
