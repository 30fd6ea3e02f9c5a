#!/usr/bin/env node
/**
 * The `mcp-tx` bin: runs {@link main} on this process's arguments and streams. Ctrl-C or a kill
 * (SIGINT, SIGTERM) stops the run cleanly (calls in flight cancelled, journal kept, exit 130); a
 * second Ctrl-C exits at once. When stdout's reader goes away (`mcp-tx batch … | head -1`), the run
 * stops the same way, says nothing more and exits 141, as a process killed by SIGPIPE would.
 */
import { ExitCode, errorText } from './io.js';
import { main } from './program.js';

const interrupt = new AbortController();
const onSignal = () => {
  if (interrupt.signal.aborted) process.exit(ExitCode.Interrupted);
  interrupt.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/** The first error of stdout (asynchronous, on a pipe or terminal): nothing more is written there. */
let stdoutError: NodeJS.ErrnoException | undefined;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  stdoutError ??= error;
  interrupt.abort();
});
// A closed stderr leaves nowhere to report anything: carry on without it.
process.stderr.on('error', () => undefined);
const stdoutClosed = () => stdoutError?.code === 'EPIPE';

const exitCode = await main(process.argv.slice(2), {
  stdout: (text) => {
    if (stdoutError === undefined) process.stdout.write(text);
  },
  stderr: (text) => {
    if (!stdoutClosed()) process.stderr.write(text);
  },
  isTTY: process.stderr.isTTY === true,
  columns: process.stderr.columns,
  signal: interrupt.signal,
});
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
if (stdoutError === undefined) process.exitCode = exitCode;
else if (stdoutClosed()) process.exitCode = ExitCode.OutputClosed;
else {
  process.stderr.write(`mcp-tx: cannot write stdout: ${errorText(stdoutError)}\n`);
  process.exitCode = ExitCode.Failed;
}
