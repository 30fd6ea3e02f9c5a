#!/usr/bin/env node
/**
 * The `mcp-tx` bin: runs {@link main} on this process's arguments and streams. Ctrl-C or a kill
 * (SIGINT, SIGTERM) stops the run cleanly (calls in flight cancelled, journal kept, exit 130); a
 * second Ctrl-C exits at once.
 */
import { ExitCode } from './io.js';
import { main } from './program.js';

const interrupt = new AbortController();
const onSignal = () => {
  if (interrupt.signal.aborted) process.exit(ExitCode.Interrupted);
  interrupt.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

process.exitCode = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: process.stderr.isTTY === true,
  columns: process.stderr.columns,
  signal: interrupt.signal,
});
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
