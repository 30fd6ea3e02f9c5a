import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { catchError, concatMap, from, map, mergeMap, type Observable, of } from 'rxjs';
import { z } from 'zod';
import type { McpTx } from '../client.js';
import { createMcpTx } from '../client.js';
import { TxError } from '../errors.js';
import { tokenBucket } from '../limiter/tokenBucket.js';
import { MAX_TIMEOUT_MS, type TxConfig } from '../schemas.js';
import { connectServer, type ServerTarget } from './connect.js';
import { type BatchLine, parseInput } from './input.js';
import { CliError, type CliIo, ExitCode, errorText } from './io.js';
import { BatchJournal, type ResultLine } from './journal.js';
import { startProgress } from './progress.js';
import { formatSummary, summarize } from './summary.js';

const wholeNumber = () => z.coerce.number({ message: 'must be a number' }).int('must be a whole number');

/**
 * The options of `mcp-tx batch`, as commander hands them over (strings), checked and converted;
 * exactly one of `stdio` and `url`.
 *
 * @example
 * parseOrThrow(BatchOptionsSchema, { input: 'calls.jsonl', url: 'http://127.0.0.1:3000/mcp', concurrency: '4' }, '');
 */
export const BatchOptionsSchema = z
  .strictObject({
    input: z.string().min(1, 'must name a file'),
    out: z.string().min(1, 'must name a file').optional(),
    stdio: z.string().trim().min(1, 'must not be empty').optional(),
    url: z
      .string()
      .refine(
        (value) => /^https?:\/\/./.test(value) && URL.canParse(value),
        'must be an http:// or https:// URL',
      )
      .optional(),
    concurrency: wholeNumber().min(1, 'must be at least 1').max(10_000, 'must be at most 10000').default(8),
    rate: z.coerce
      .number({ message: 'must be a number' })
      .positive('must be greater than 0')
      .finite('must be finite')
      .optional(),
    retry: wholeNumber().min(0, 'must be at least 0').max(999, 'must be at most 999').default(2),
    retryDelay: wholeNumber().min(0, 'must be at least 0').max(MAX_TIMEOUT_MS).default(1_000),
    timeout: wholeNumber().min(1, 'must be at least 1').max(MAX_TIMEOUT_MS).default(30_000),
    journal: z.string().min(1, 'must name a file').optional(),
  })
  .refine((options) => (options.stdio === undefined) !== (options.url === undefined), {
    message: 'give exactly one of --stdio <command> or --url <url>',
    path: ['stdio'],
  });
export type BatchOptions = z.output<typeof BatchOptionsSchema>;

/**
 * `mcp-tx batch`: runs every call of a JSONL file through `tx.call$`'s default pipeline (retry,
 * dedupe; throttle with `--rate`), `--concurrency` at a time, and writes one result line per input
 * line, in the order they finish. With `--journal`, a re-run skips the lines that completed.
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
  let run: { outcome: RunOutcome; elapsedMs: number } = { outcome: 'done', elapsedMs: 0 };
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
        run = await runPending(options, pending, journal, io, (result) => {
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
  io.stderr(formatSummary(summarize(results, run.elapsedMs)));
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

/** Connects to the server the flags name and runs the lines left to run; says how long the calls took. */
async function runPending(
  options: BatchOptions,
  pending: readonly BatchLine[],
  journal: BatchJournal,
  io: CliIo,
  onResult: (result: ResultLine) => void,
): Promise<{ outcome: RunOutcome; elapsedMs: number }> {
  const target: ServerTarget =
    options.url === undefined ? { stdio: options.stdio as string } : { url: options.url };
  const tx = createMcpTx(await connectServer(target, options.timeout), batchConfig(options));
  const startedAt = Date.now();
  try {
    const { concurrency } = options;
    const outcome = await runLines(tx, pending, { concurrency, journal, signal: io.signal }, onResult);
    return { outcome, elapsedMs: Date.now() - startedAt };
  } finally {
    await tx.close({ timeoutMs: 1_000 });
  }
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
 * call is a result too (`ok: false`), never an error of the run. Aborting `signal` cancels the calls
 * in flight and resolves `'interrupted'`.
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
  );
  return new Promise<RunOutcome>((resolve, reject) => {
    if (signal?.aborted) return resolve('interrupted');
    const subscription = results$.subscribe({
      next: onResult,
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

/** Where results go: the `--out` file (rewritten each run), else stdout. */
function openOutput(path: string | undefined, io: CliIo) {
  if (path === undefined) return { sharesTerminal: io.isTTY, write: io.stdout, close: () => undefined };
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (error) {
    throw new CliError(`cannot write --out ${path}: ${errorText(error)}`, ExitCode.Usage);
  }
  return {
    sharesTerminal: false,
    write: (text: string) => {
      writeSync(fd, text);
    },
    close: () => closeSync(fd),
  };
}
