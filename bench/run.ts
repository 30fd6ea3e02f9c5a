/**
 * `npm run bench`: runs every benchmark (bench/*.bench.ts) in its own process, one after another,
 * then joins the tables in bench/results/ into bench/results.md under a header naming the machine,
 * the date and the command. `npm run bench -- <name>…` (e.g. `npm run bench -- memory stdio`) runs
 * only those; results.md is still rebuilt from every results/*.md present.
 *
 * A benchmark that needs Node flags names them in a `@nodeFlags` line of its source, e.g.
 * ` * @nodeFlags --expose-gc`.
 *
 * The benchmarks import `mcp-tx` by name, which resolves to the build (dist/): they measure the
 * JavaScript a user runs, not tsx's on-the-fly transform of the sources (which wraps every closure
 * in a naming helper, a cost the package does not have). The build is made first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { machineDescription } from './harness.js';

const here = new URL('.', import.meta.url);
const SUFFIX = '.bench.ts';
const available = readdirSync(here)
  .filter((file) => file.endsWith(SUFFIX))
  .map((file) => file.slice(0, -SUFFIX.length))
  .sort();

/** The benchmarks named on the command line (with or without `.bench.ts`), or all of them. */
function selected(names: readonly string[]): string[] {
  const wanted = names.map((name) => (name.endsWith(SUFFIX) ? name.slice(0, -SUFFIX.length) : name));
  const unknown = wanted.filter((name) => !available.includes(name));
  if (unknown.length > 0) {
    console.error(`Unknown benchmark ${unknown.join(', ')}: choose from ${available.join(', ')}`);
    process.exit(2);
  }
  return wanted.length === 0 ? available : wanted;
}

/** The Node flags a benchmark declares with `@nodeFlags`. */
function nodeFlagsOf(name: string): string[] {
  const source = readFileSync(new URL(`${name}${SUFFIX}`, here), 'utf8');
  return (
    source
      .match(/@nodeFlags\s+([^\n]+)/)?.[1]
      ?.trim()
      .split(/\s+/) ?? []
  );
}

/** Runs one benchmark in its own process; true when it succeeded. */
function run(name: string): boolean {
  const flags = nodeFlagsOf(name);
  console.log(`\n== ${name}${flags.length > 0 ? ` (node ${flags.join(' ')})` : ''}`);
  const started = Date.now();
  try {
    execFileSync(
      process.execPath,
      [...flags, '--import', 'tsx', new URL(`${name}${SUFFIX}`, here).pathname],
      {
        stdio: 'inherit',
      },
    );
    console.log(`(${((Date.now() - started) / 1_000).toFixed(1)} s)`);
    return true;
  } catch {
    console.error(`${name} failed: bench/results/${name}.md was not updated`);
    return false;
  }
}

/** bench/results.md: the header, then each benchmark's last results. */
function joinResults(command: string): void {
  const sections = available
    .filter((name) => existsSync(new URL(`results/${name}.md`, here)))
    .map((name) => `## ${name}\n\n${readFileSync(new URL(`results/${name}.md`, here), 'utf8')}`);
  const header = [
    '# Benchmark results',
    '',
    `- Machine: ${machineDescription()}`,
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Command: \`npm run bench\` (each benchmark in its own process; \`npm run bench -- <name>\` reruns one)${
      command === 'npm run bench' ? '' : `; last updated by \`${command}\``
    }`,
    '',
    'Each section says how it measured, and when.',
  ].join('\n');
  writeFileSync(new URL('results.md', here), `${header}\n\n${sections.join('\n')}`);
}

const args = process.argv.slice(2);
const benches = selected(args);
console.log('== build (the benchmarks measure dist/)');
execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
const failed = benches.filter((name) => !run(name));
joinResults(['npm run bench', ...(args.length > 0 ? ['--', ...args] : [])].join(' '));
if (failed.length > 0) {
  console.error(`\nFailed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
