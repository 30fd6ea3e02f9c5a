import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultLine } from '../../src/cli/journal.js';
import { scriptArgs, scriptCommand } from '../support/childScript.js';
import { startCliHttpServer } from '../support/cliServer.js';
import { eventually } from '../support/fixture.js';

const root = new URL('../..', import.meta.url).pathname;

let server: Awaited<ReturnType<typeof startCliHttpServer>>;
let dir: string;
beforeAll(async () => {
  server = await startCliHttpServer();
  dir = await mkdtemp(join(tmpdir(), 'mcp-tx-cli-e2e-'));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real `mcp-tx` bin in a child process: bundled from source, or as `bin` says (the demo runs it with tsx). */
function startCli(
  args: readonly string[],
  bin = scriptArgs('src/cli/main.ts'),
): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(process.execPath, [...bin, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exit = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, exit };
}

/** The lines a journal recorded as finished (a last line torn by a kill is not one). */
async function journaledLines(path: string): Promise<number[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as { type: string; data?: { line: number } }];
      } catch {
        return [];
      }
    })
    .filter((event) => event.type === 'BatchLineFinished')
    .map((event) => event.data?.line as number);
}

const parseResults = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ResultLine);

/** `count` charge calls whose ids start with `prefix`, each answering after `ms`. */
async function chargeInput(prefix: string, count: number, ms: number) {
  const ids = Array.from({ length: count }, (_, n) => `${prefix}${n}`);
  const path = join(dir, `${prefix}.jsonl`);
  await writeFile(
    path,
    ids.map((id) => JSON.stringify({ tool: 'charge', arguments: { id, ms } })).join('\n'),
  );
  return { ids, path };
}

describe('the mcp-tx bin', () => {
  it('killed with SIGKILL mid-run and re-run with its journal, completes every line and runs none twice', async () => {
    const { ids, path } = await chargeInput('kill', 60, 25);
    const journal = join(dir, 'kill.journal.jsonl');
    const out = join(dir, 'kill.results.jsonl');
    const args = ['batch', '--input', path, '--url', server.url, '--journal', journal, '--out', out];

    const first = startCli([...args, '--concurrency', '4']);
    await eventually(async () => (await journaledLines(journal)).length >= 12, 15_000);
    first.child.kill('SIGKILL');
    expect((await first.exit).signal).toBe('SIGKILL');
    const finishedBeforeKill = await journaledLines(journal);
    expect(finishedBeforeKill.length).toBeLessThan(ids.length);
    const requestsBeforeRerun = { ...server.state.requests };

    const second = await startCli(args).exit;
    expect(second.code).toBe(0);
    const results = parseResults(await readFile(out, 'utf8')).sort((a, b) => a.line - b.line);
    expect(results.map((result) => result.line)).toEqual(ids.map((_, index) => index + 1));
    expect(results.every((result) => result.ok && result.meta?.status === 'completed')).toBe(true);
    for (const line of finishedBeforeKill) {
      expect(results[line - 1]?.fromJournal).toBe(true);
      // Not asked again: the re-run skipped it.
      expect(server.state.requests[`kill${line - 1}`]).toBe(requestsBeforeRerun[`kill${line - 1}`]);
      expect(server.state.requests[`kill${line - 1}`]).toBe(1);
    }
    // The calls cut short by the kill were sent again with the same derived key: the server ran each once.
    for (const id of ids) expect(server.state.effects[id]).toBe(1);
    expect(second.stderr).toMatch(
      new RegExp(`lines +60 \\(${finishedBeforeKill.length} from the journal\\)`),
    );
  });

  /** `mcp-tx batch` of `path` against the HTTP test server, 2 at a time, journaled to `journal`. */
  const batchOverHttp = (path: string, journal: string) => [
    'batch',
    '--input',
    path,
    '--url',
    server.url,
    '--journal',
    journal,
    '--concurrency',
    '2',
  ];

  it('stops on SIGINT with exit 130, keeping its journal', async () => {
    const { ids, path } = await chargeInput('int', 40, 25);
    const journal = join(dir, 'int.journal.jsonl');
    const run = startCli(batchOverHttp(path, journal));
    await eventually(async () => (await journaledLines(journal)).length >= 4, 15_000);
    run.child.kill('SIGINT');
    const exit = await run.exit;
    expect(exit.code).toBe(130);
    expect(exit.stderr).toContain(`interrupted with`);
    expect(exit.stderr).toContain(`run again with --journal ${journal} to finish`);
    expect((await journaledLines(journal)).length).toBeLessThan(ids.length);
  });

  it('stops quietly with exit 141 when the reader of its stdout goes away (`| head -1`)', async () => {
    const { ids, path } = await chargeInput('pipe', 40, 10);
    const journal = join(dir, 'pipe.journal.jsonl');
    const run = startCli(batchOverHttp(path, journal));
    run.child.stdout?.once('data', () => run.child.stdout?.destroy());
    const exit = await run.exit;
    expect(exit.code).toBe(141);
    expect(exit.stderr).not.toMatch(/Error|EPIPE|summary|interrupted/);
    const journaled = await journaledLines(journal);
    expect(journaled.length).toBeGreaterThan(0);
    expect(journaled.length).toBeLessThan(ids.length);
  });

  it('stops at once with exit 130 on SIGINT while the --stdio server has not answered initialize', async () => {
    const started = join(dir, 'silent.started');
    const command = `${scriptCommand('test/support/cliStdioServer.ts')} --silent '${started}'`;
    const { path } = await chargeInput('silent', 1, 0);
    const run = startCli(['batch', '--input', path, '--stdio', command, '--timeout', '60000']);
    await eventually(async () => existsSync(started), 15_000);
    const interruptedAt = Date.now();
    run.child.kill('SIGINT');
    const exit = await run.exit;
    expect(exit.code).toBe(130);
    expect(exit.stderr).toContain(`mcp-tx: interrupted while connecting to --stdio "${command}"`);
    expect(Date.now() - interruptedAt).toBeLessThan(5_000);
  });

  it('exits 2 naming an unknown flag', async () => {
    const exit = await startCli(['batch', '--input', 'calls.jsonl', '--url', server.url, '--rate-limit', '5'])
      .exit;
    expect(exit.code).toBe(2);
    expect(exit.stderr).toContain("error: unknown option '--rate-limit'");
  });

  it('runs the demo from source, as `npm run demo` does: the burst against the bundled flaky server, a health report, exit 0', async () => {
    const exit = await startCli(['demo'], ['--import', 'tsx', 'src/cli/main.ts']).exit;
    expect(exit.code).toBe(0);
    const report = exit.stdout;
    // 20 repeated orders served by the client's dedupe, and the charge the server made just before
    // it crashed, answered from its ledger after the reconnect.
    expect(report).toMatch(/completed +200\n +failed +0\n +duplicates +21\n/);
    expect(report).toMatch(
      /health\n +tool +calls +success +attempts +duplicates +p50 +p95\n +charge +120 +100\.0%/,
    );
    expect(report).toMatch(/ +lookup +80 +100\.0%/);
    expect(report).toContain('healthy, success 100.0%, breaker closed');
    expect(report).toContain('120 charge requests for 100 orders: 100 charges made, each order exactly once');
    expect(report).toMatch(/retried: [1-9]\d* charges, [1-9]\d* lookups \(after TEMPORARY_FAILURE/);
    expect(report).toMatch(
      /server crashed after 60 calls; reconnected in \d+ ms, 1 charge cut short answered from its ledger\n/,
    );
    expect(report).toMatch(/connection +1 reconnect, \d+ ms disconnected/);
    expect(exit.stderr).toMatch(/demo: 200\/200 \(100%\), 0 failed/);
  });
});
