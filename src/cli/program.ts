import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { parseOrThrow } from '../config/validators.js';
import { isTxError } from '../core/errors.js';
import { BatchOptionsSchema, runBatch } from './batch.js';
import { runDemo } from './demo.js';
import { CliError, type CliIo, ExitCode, errorText } from './io.js';

/**
 * The `mcp-tx` command line: parses `argv` (the arguments after the program name), runs the
 * command, and resolves with its exit code: 0 all went well, 1 a call or line failed or the server
 * could not be reached, 2 bad usage (unknown flag, bad option value), 130 interrupted. Writes only
 * through `io`, so that it runs in-process in tests.
 *
 * @example
 * const code = await main(['batch', '--input', 'calls.jsonl', '--url', 'http://127.0.0.1:3000/mcp'], io);
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = ExitCode.Ok;
  const program = new Command('mcp-tx')
    .description('Reliable MCP tool calls from the command line (retry, throttle, dedupe, journal)')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showSuggestionAfterError();
  program
    .command('batch')
    .description(
      'Run a JSONL file of calls ({ "tool", "arguments", "idempotency_key"? } a line) against a server',
    )
    .requiredOption('--input <file>', 'the calls, one JSON object a line')
    .option('--out <file>', 'write the results JSONL there (default: stdout)')
    .option(
      '--stdio <command>',
      'start this MCP server and talk to it over stdio (split on spaces, quotes kept, no shell)',
    )
    .option('--url <url>', 'a Streamable HTTP MCP server')
    .option('--concurrency <n>', 'calls in flight at once (default: 8)')
    .option('--rate <r>', 'at most r attempts a second (token bucket)')
    .option('--retry <n>', 'retries after the first attempt, 0 for none (default: 2)')
    .option('--retry-delay <ms>', 'first retry delay, doubling after (default: 1000)')
    .option('--timeout <ms>', 'per-attempt and connection timeout (default: 30000)')
    .option('--journal <file>', 'record finished lines there; a re-run skips them')
    .action(async (options: Record<string, unknown>) => {
      exitCode = await runBatch(parseOptions(options), io);
    });
  program
    .command('demo')
    .description('Run 200 calls against a bundled flaky MCP-Tx server: nothing to install or start')
    .action(async () => {
      exitCode = await runDemo(io);
    });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    return failure(error, io);
  }
}

/** Checks the batch options with zod; a bad value is a usage error naming its flag. */
function parseOptions(options: Record<string, unknown>) {
  try {
    return parseOrThrow(BatchOptionsSchema, options, '');
  } catch (error) {
    if (!isTxError(error) || error.field === undefined) throw error;
    const reason = error.message.slice(`Invalid ${error.field}: `.length);
    throw new CliError(`Invalid ${flagOf(error.field)}: ${reason}`, ExitCode.Usage);
  }
}

function flagOf(field: string): string {
  return `--${field.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** The exit code of what stopped the command, after saying what it was (commander already did for its own). */
function failure(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) {
    const done = error.code === 'commander.helpDisplayed' || error.code === 'commander.version';
    return done || error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
  }
  if (error instanceof CliError) {
    io.stderr(`mcp-tx: ${error.message}\n`);
    return error.exitCode;
  }
  io.stderr(`mcp-tx: ${errorText(error)}\n`);
  return ExitCode.Failed;
}

/** This package's version, from the package.json above this file (in src/ or in dist/src/). */
function packageVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'mcp-tx' && pkg.version !== undefined) return pkg.version;
    } catch {
      // not there: look one level up
    }
  }
  return '0.0.0';
}
