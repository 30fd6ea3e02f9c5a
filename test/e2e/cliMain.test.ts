import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitCommand } from '../../src/cli/connect.js';
import type { CliIo } from '../../src/cli/io.js';
import type { ResultLine } from '../../src/cli/journal.js';
import { main } from '../../src/cli/program.js';
import { sanitizeMessage } from '../../src/core/sanitize.js';
import { scriptCommand } from '../support/childScript.js';
import { startCliHttpServer } from '../support/cliServer.js';
import { until } from '../support/fixture.js';

const stdioServer = new URL('../support/cliStdioServer.ts', import.meta.url).pathname;
const crashingServer = new URL('../support/crashingStdioServer.ts', import.meta.url).pathname;

let server: Awaited<ReturnType<typeof startCliHttpServer>>;
let dir: string;
beforeAll(async () => {
  server = await startCliHttpServer();
  dir = await mkdtemp(join(tmpdir(), 'mcp-tx-cli-'));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** What a run wrote, and an io that records it (an abort controller for Ctrl-C). */
function capture(options: { isTTY?: boolean } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const interrupt = new AbortController();
  const io: CliIo = {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    isTTY: options.isTTY ?? false,
    columns: 120,
    signal: interrupt.signal,
  };
  return { io, interrupt, stdout: () => out.join(''), stderr: () => err.join('') };
}

let files = 0;
/** Writes `lines` (objects as JSON, strings as they are) to a new input file. */
async function inputFile(lines: readonly unknown[]): Promise<string> {
  const path = join(dir, `calls-${++files}.jsonl`);
  await writeFile(
    path,
    `${lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n')}\n`,
  );
  return path;
}

const charge = (id: string, extra: Record<string, unknown> = {}) => ({
  tool: 'charge',
  arguments: { id },
  ...extra,
});
const parseResults = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ResultLine);
const byLine = (results: ResultLine[]) => [...results].sort((a, b) => a.line - b.line);

describe('mcp-tx batch', () => {
  it('writes one result line per input line with its meta, and a summary', async () => {
    const input = await inputFile([
      charge('r1'),
      charge('r2', { idempotency_key: 'order-r2' }),
      charge('r2', { idempotency_key: 'order-r2' }),
      charge('r3'),
    ]);
    const run = capture();
    const code = await main(['batch', '--input', input, '--url', server.url, '--concurrency', '1'], run.io);

    expect(code).toBe(0);
    const results = byLine(parseResults(run.stdout()));
    expect(results.map(({ line, tool, ok, data }) => ({ line, tool, ok, data }))).toEqual([
      { line: 1, tool: 'charge', ok: true, data: { id: 'r1' } },
      { line: 2, tool: 'charge', ok: true, data: { id: 'r2' } },
      { line: 3, tool: 'charge', ok: true, data: { id: 'r2' } },
      { line: 4, tool: 'charge', ok: true, data: { id: 'r3' } },
    ]);
    expect(results.map((result) => result.meta?.duplicate)).toEqual([false, false, true, false]);
    expect(
      results.every((result) => result.meta?.status === 'completed' && result.meta.serverSupportsTx),
    ).toBe(true);
    expect(results[1]?.meta?.idempotencyKey).toBe('order-r2');
    // Lines without a key get one derived from the run's journal id and their line number.
    expect(results[0]?.meta?.idempotencyKey).toMatch(/^batch-[0-9a-f-]{36}-line-1$/);
    expect(results[3]?.meta?.idempotencyKey).toMatch(/^batch-[0-9a-f-]{36}-line-4$/);
    expect(server.state.effects).toMatchObject({ r1: 1, r2: 1, r3: 1 });
    expect(server.state.requests.r2).toBe(1); // the duplicate was served by the client's dedupe

    const summary = run.stderr();
    expect(summary).toMatch(/lines +4 \(0 from the journal\)/);
    expect(summary).toMatch(/completed +4\n/);
    expect(summary).toMatch(/failed +0\n/);
    expect(summary).toMatch(/duplicates +1\n/);
    expect(summary).toMatch(/attempts +3\n/);
    expect(summary).toMatch(/latency +p50 \d+ ms, p95 \d+ ms/);
    expect(summary).toMatch(/throughput +\d+ calls\/s \(4 calls in \d+\.\d\d s\)/);
  });

  it('names malformed lines, runs the others, and exits 1', async () => {
    const input = await inputFile([
      charge('m1'),
      '{"tool": "charge", ',
      '',
      { arguments: { id: 'x' } },
      charge('m5'),
    ]);
    const out = join(dir, 'malformed-results.jsonl');
    const run = capture();
    const code = await main(['batch', '--input', input, '--url', server.url, '--out', out], run.io);

    expect(code).toBe(1);
    expect(run.stderr()).toContain(`${input}:2: not JSON`);
    expect(run.stderr()).toContain(`${input}:4: Invalid tool: must be a string`);
    const results = byLine(parseResults(await readFile(out, 'utf8')));
    expect(results.map(({ line, ok }) => ({ line, ok }))).toEqual([
      { line: 1, ok: true },
      { line: 2, ok: false },
      { line: 4, ok: false },
      { line: 5, ok: true },
    ]);
    expect(results[1]?.error?.code).toBe('MCP_TX_VALIDATION');
    expect(server.state.effects).toMatchObject({ m1: 1, m5: 1 });
    expect(run.stdout()).toBe(''); // results went to --out
    expect(run.stderr()).toMatch(/completed +2\n +failed +2\n/);
  });

  it('reports a call that failed as a result line and exits 1', async () => {
    const input = await inputFile([{ tool: 'fail', arguments: { reason: 'card declined' } }, charge('f2')]);
    const run = capture();
    expect(await main(['batch', '--input', input, '--url', server.url], run.io)).toBe(1);
    const [failed] = byLine(parseResults(run.stdout()));
    expect(failed).toMatchObject({
      line: 1,
      tool: 'fail',
      ok: false,
      error: { code: 'MCP_TX_TOOL_ERROR', message: 'card declined' },
      meta: { status: 'failed', attempts: 1 },
    });
  });

  it('runs against a server started with --stdio (quoted arguments kept whole)', async () => {
    const input = await inputFile([charge('s1'), charge('s2')]);
    const run = capture();
    const command = scriptCommand(stdioServer);
    expect(await main(['batch', '--input', input, '--stdio', command], run.io)).toBe(0);
    expect(byLine(parseResults(run.stdout())).map((result) => result.data)).toEqual([
      { id: 's1' },
      { id: 's2' },
    ]);
  });

  it('starts a --stdio server that keeps exiting again, and completes every line, each charge once (exit 0); the reconnect lines redact the secrets of its command line', async () => {
    const ledger = join(dir, 'crashing.ledger.jsonl');
    const ids = Array.from({ length: 20 }, (_, n) => `x${n}`);
    const input = await inputFile(ids.map((id) => ({ tool: 'charge', arguments: { id, ms: 5 } })));
    const run = capture();
    const server = `${scriptCommand(crashingServer)} --ledger '${ledger}' --exit-every 6`;
    const command = `env SHOP_API_TOKEN=tok-3f9a8b7c6d5e4f ${server}`;
    const args = ['--concurrency', '4', '--retry', '5', '--retry-delay', '10'];
    const code = await main(['batch', '--input', input, '--stdio', command, ...args], run.io);

    expect(run.stderr()).toContain(
      `mcp-tx: lost the connection to --stdio "env SHOP_API_TOKEN=[REDACTED] ${sanitizeMessage(server)}"`,
    );
    expect(run.stderr()).not.toContain('tok-3f9a8b7c6d5e4f');
    expect(code).toBe(0);
    const results = byLine(parseResults(run.stdout()));
    expect(results.map((result) => result.line)).toEqual(ids.map((_, index) => index + 1));
    expect(results.every((result) => result.ok && result.meta?.status === 'completed')).toBe(true);
    const lives = (await readFile(`${ledger}.lives`, 'utf8')).trim().split('\n').length;
    expect(lives).toBeGreaterThanOrEqual(4); // 20 charges, a life ends after 6 calls
    // The ledger holds every charge made, in every life: each id exactly once.
    const charged = (await readFile(ledger, 'utf8'))
      .trim()
      .split('\n')
      .flatMap((line) => (JSON.parse(line) as { effect?: { id: string } }).effect?.id ?? []);
    expect([...charged].sort()).toEqual([...ids].sort());
    // The charges cut short by an exit were sent again after the reconnect; the ledger answered them.
    expect(results.some((result) => result.meta?.duplicate === true && result.meta.attempts > 1)).toBe(true);
    expect(run.stderr()).toMatch(/mcp-tx: reconnected to --stdio ".*" in \d+ ms\n/);
    expect(run.stderr()).toMatch(new RegExp(`reconnects +${lives - 1}\n`));
  }, 60_000);

  it('prints plain progress lines when stderr is not a terminal', async () => {
    const input = await inputFile(Array.from({ length: 20 }, (_, n) => charge(`p${n}`)));
    const run = capture({ isTTY: false });
    expect(await main(['batch', '--input', input, '--url', server.url], run.io)).toBe(0);
    const progress = run
      .stderr()
      .split('\n')
      .filter((line) => line.startsWith('batch: '));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toMatch(/^batch: 20\/20 \(100%\), 0 failed, \d+\/s$/);
    expect(progress.every((line) => /^batch: \d+\/20 \(\d+%\), \d+ failed, \d+\/s$/.test(line))).toBe(true);
    expect(run.stderr()).not.toContain('\x1b');
  });

  it('draws a progress bar when stderr is a terminal, never over the results printed there', async () => {
    const input = await inputFile(Array.from({ length: 5 }, (_, n) => charge(`t${n}`)));
    const screen: { stream: 'stdout' | 'stderr'; text: string }[] = [];
    const run = capture({ isTTY: true });
    const io: CliIo = {
      ...run.io,
      stdout: (text) => screen.push({ stream: 'stdout', text }),
      stderr: (text) => screen.push({ stream: 'stderr', text }),
    };
    expect(await main(['batch', '--input', input, '--url', server.url], io)).toBe(0);
    const terminal = screen.map(({ text }) => text).join('');
    expect(terminal).toMatch(/batch \[█+\] 100% \| 5\/5 \| 0 failed/);
    const results = screen.filter(({ stream }) => stream === 'stdout');
    expect(results).toHaveLength(5);
    expect(resultRowsRevisited(screen)).toEqual([]);
  });

  it('ignores a UTF-8 byte order mark before the first line', async () => {
    const input = join(dir, 'bom.jsonl');
    await writeFile(input, `\uFEFF${JSON.stringify(charge('bom1'))}\n${JSON.stringify(charge('bom2'))}\n`);
    const run = capture();
    expect(await main(['batch', '--input', input, '--url', server.url], run.io)).toBe(0);
    expect(byLine(parseResults(run.stdout())).map(({ line, ok }) => ({ line, ok }))).toEqual([
      { line: 1, ok: true },
      { line: 2, ok: true },
    ]);
  });

  it('refuses a line that reuses an idempotency key for other arguments, before calling anything', async () => {
    const input = await inputFile([
      charge('dk1', { idempotency_key: 'dup-key' }),
      charge('dk1', { idempotency_key: 'dup-key' }), // the same call again: deduped
      charge('dk2', { idempotency_key: 'dup-key' }), // another call under the key: refused
      { tool: 'fail', arguments: { reason: 'other tool' }, idempotency_key: 'dup-key' }, // other tool: its own key
    ]);
    const run = capture();
    expect(await main(['batch', '--input', input, '--url', server.url], run.io)).toBe(1);
    expect(run.stderr()).toContain(
      `${input}:3: Invalid idempotency_key: "dup-key" is already the key of line 1 (charge with other arguments)`,
    );
    const results = byLine(parseResults(run.stdout()));
    expect(results.map(({ line, ok, error }) => ({ line, ok, code: error?.code }))).toEqual([
      { line: 1, ok: true, code: undefined },
      { line: 2, ok: true, code: undefined },
      { line: 3, ok: false, code: 'MCP_TX_VALIDATION' },
      { line: 4, ok: false, code: 'MCP_TX_TOOL_ERROR' },
    ]);
    expect(results[1]?.meta?.duplicate).toBe(true);
    expect(server.state.effects.dk1).toBe(1);
    expect(server.state.requests.dk2).toBeUndefined();
  });

  it('names an unknown field of a line as a field', async () => {
    const input = await inputFile([{ tool: 'charge', args: { id: 'x' } }]);
    const run = capture();
    expect(await main(['batch', '--input', input, '--url', server.url], run.io)).toBe(1);
    expect(run.stderr()).toContain(`${input}:1: Invalid args: is not a known field`);
  });
});

describe('mcp-tx batch when results cannot be written', () => {
  it('stops with exit 1 naming stdout, without a stack trace; a re-run with the journal resumes', async () => {
    const ids = Array.from({ length: 12 }, (_, n) => `w${n}`);
    const input = await inputFile(ids.map((id) => charge(id)));
    const journal = join(dir, 'unwritable.journal.jsonl');
    const args = ['batch', '--input', input, '--url', server.url, '--journal', journal, '--concurrency', '1'];
    const first = capture();
    let writes = 0;
    const io: CliIo = {
      ...first.io,
      stdout: (text) => {
        if (++writes > 3) throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
        first.io.stdout(text);
      },
    };
    expect(await main(args, io)).toBe(1);
    expect(first.stderr()).toContain('mcp-tx: cannot write stdout: write EPIPE\n');
    expect(first.stderr()).not.toContain('    at ');
    expect(parseResults(first.stdout())).toHaveLength(3);

    const second = capture();
    expect(await main(args, second.io)).toBe(0);
    const results = byLine(parseResults(second.stdout()));
    expect(results.map((result) => result.line)).toEqual(ids.map((_, index) => index + 1));
    // The line whose result could not be written was recorded first: it is not called again.
    expect(results.filter((result) => result.fromJournal)).toHaveLength(4);
    for (const id of ids) expect(server.state.requests[id]).toBe(1);
  });

  it.runIf(existsSync('/dev/full'))('stops with exit 1 naming --out when the disk is full', async () => {
    const input = await inputFile([charge('full1')]);
    const run = capture();
    expect(await main(['batch', '--input', input, '--url', server.url, '--out', '/dev/full'], run.io)).toBe(
      1,
    );
    expect(run.stderr()).toContain('mcp-tx: cannot write --out /dev/full: ENOSPC: no space left on device');
  });
});

describe('mcp-tx batch --journal', () => {
  it('stops on interrupt with exit 130, and a re-run finishes without calling finished lines again', async () => {
    const ids = Array.from({ length: 30 }, (_, n) => `j${n}`);
    const input = await inputFile(ids.map((id) => ({ tool: 'charge', arguments: { id, ms: 20 } })));
    const journal = join(dir, 'interrupted.journal.jsonl');
    const out = join(dir, 'interrupted-results.jsonl');
    const args = [
      'batch',
      '--input',
      input,
      '--url',
      server.url,
      '--journal',
      journal,
      '--out',
      out,
      '--concurrency',
      '2',
    ];

    const first = capture();
    let finished = 0;
    const firstRun = main(args, {
      ...first.io,
      stderr: (text) => {
        first.io.stderr(text);
        if (text.startsWith('batch: ')) finished = Number(/^batch: (\d+)/.exec(text)?.[1]);
        if (finished >= 6) first.interrupt.abort();
      },
    });
    expect(await firstRun).toBe(130);
    expect(first.stderr()).toContain(`run again with --journal ${journal} to finish`);
    const finishedFirst = parseResults(await readFile(out, 'utf8'));
    expect(finishedFirst.length).toBeGreaterThanOrEqual(6);
    expect(finishedFirst.length).toBeLessThan(ids.length);

    const second = capture();
    expect(await main(args, second.io)).toBe(0);
    const results = byLine(parseResults(await readFile(out, 'utf8')));
    expect(results.map((result) => result.line)).toEqual(ids.map((_, index) => index + 1));
    expect(results.every((result) => result.ok)).toBe(true);
    // Every line the first run reported is taken from the journal (with, maybe, one it recorded as it stopped).
    const resumed = results.filter((result) => result.fromJournal);
    const resumedLines = new Set(resumed.map((result) => result.line));
    for (const { line } of finishedFirst) expect(resumedLines.has(line)).toBe(true);
    for (const { line } of resumed) expect(server.state.requests[`j${line - 1}`]).toBe(1);
    for (const id of ids) expect(server.state.effects[id]).toBe(1);
    expect(second.stderr()).toMatch(new RegExp(`lines +30 \\(${resumed.length} from the journal\\)`));

    // A third run has nothing left to do: it does not even connect.
    const third = capture();
    expect(
      await main(
        ['batch', '--input', input, '--url', 'http://127.0.0.1:9/mcp', '--journal', journal],
        third.io,
      ),
    ).toBe(0);
    expect(parseResults(third.stdout()).every((result) => result.fromJournal)).toBe(true);
  });

  it('runs failed lines again on a re-run, with the same derived key', async () => {
    const input = await inputFile([charge('k1'), { tool: 'fail', arguments: { reason: 'no' } }]);
    const journal = join(dir, 'failed.journal.jsonl');
    const args = ['batch', '--input', input, '--url', server.url, '--journal', journal];
    const first = capture();
    expect(await main(args, first.io)).toBe(1);
    const second = capture();
    expect(await main(args, second.io)).toBe(1);
    const [kept, again] = byLine(parseResults(second.stdout()));
    expect(kept?.fromJournal).toBe(true);
    expect(again?.fromJournal).toBeUndefined();
    const firstFailure = byLine(parseResults(first.stdout()))[1];
    expect(again?.meta?.idempotencyKey).toBe(firstFailure?.meta?.idempotencyKey);
    expect(server.state.requests.k1).toBe(1);
  });

  it('runs a failed line again after it was fixed in the input', async () => {
    const journal = join(dir, 'fixed.journal.jsonl');
    const input = await inputFile([charge('fx1'), { tool: 'fail', arguments: { reason: 'typo' } }]);
    const args = ['batch', '--input', input, '--url', server.url, '--journal', journal];
    expect(await main(args, capture().io)).toBe(1);
    await writeFile(input, `${JSON.stringify(charge('fx1'))}\n${JSON.stringify(charge('fx2'))}\n`);
    const fixed = capture();
    expect(await main(args, fixed.io)).toBe(0);
    const results = byLine(parseResults(fixed.stdout()));
    expect(results.map(({ line, ok, fromJournal, data }) => ({ line, ok, fromJournal, data }))).toEqual([
      { line: 1, ok: true, fromJournal: true, data: { id: 'fx1' } },
      { line: 2, ok: true, fromJournal: undefined, data: { id: 'fx2' } },
    ]);
    expect(server.state.requests.fx1).toBe(1);
  });

  it('refuses a journal that completed other calls for the same lines (exit 2)', async () => {
    const journal = join(dir, 'changed.journal.jsonl');
    const before = await inputFile([charge('c1')]);
    expect(
      await main(['batch', '--input', before, '--url', server.url, '--journal', journal], capture().io),
    ).toBe(0);
    const after = await inputFile([charge('c2')]);
    const run = capture();
    expect(await main(['batch', '--input', after, '--url', server.url, '--journal', journal], run.io)).toBe(
      2,
    );
    expect(run.stderr()).toContain('recorded another call on line 1 (the input changed)');
    expect(server.state.requests.c2).toBeUndefined();
  });
});

const ESC = '\x1b';
/** The terminal sequences that move the cursor up or down: ESC 7 / ESC 8 (save / restore), ESC [ n A / B, a newline. */
const VERTICAL_MOVES = new RegExp(`${ESC}7|${ESC}8|${ESC}\\[(\\d*)[AB]|\n`, 'g');

/**
 * Follows the cursor's row on a terminal that `screen` was written to (results on stdout, the bar
 * on stderr), and gives the rows of result lines the cursor went back to after printing them.
 */
function resultRowsRevisited(screen: readonly { stream: 'stdout' | 'stderr'; text: string }[]): number[] {
  let row = 0;
  let saved = 0;
  let lastResultRow = -1;
  const revisited: number[] = [];
  for (const { stream, text } of screen) {
    if (stream === 'stdout') lastResultRow = row;
    for (const [move, count] of text.matchAll(VERTICAL_MOVES)) {
      if (move === `${ESC}7`) saved = row;
      else if (move === `${ESC}8`) row = saved;
      else if (move === '\n') row += 1;
      else row += (move.endsWith('A') ? -1 : 1) * Number(count || 1);
      if (row <= lastResultRow) revisited.push(row);
    }
  }
  return revisited;
}

describe('mcp-tx usage and connection errors', () => {
  it('exits 2 naming an unknown flag', async () => {
    const run = capture();
    expect(
      await main(['batch', '--input', 'x.jsonl', '--url', server.url, '--concurency', '4'], run.io),
    ).toBe(2);
    expect(run.stderr()).toContain("unknown option '--concurency'");
    expect(run.stderr()).toContain('--concurrency');
  });

  it.each([
    [['--concurrency', '0'], 'mcp-tx: Invalid --concurrency: must be at least 1\n'],
    [['--retry-delay', 'soon'], 'mcp-tx: Invalid --retry-delay: must be a number\n'],
    [['--timeout', '2147483648'], 'mcp-tx: Invalid --timeout: must be at most 2147483647\n'],
    [['--rate', '0.0000001'], 'mcp-tx: Invalid --rate: must be at least 0.01 (one attempt every 100 s)\n'],
  ])('exits 2 naming a bad option value: %j', async (flags, message) => {
    const bad = capture();
    expect(await main(['batch', '--input', 'x.jsonl', '--url', server.url, ...flags], bad.io)).toBe(2);
    expect(bad.stderr()).toBe(message);
  });

  it('exits 2 naming a missing server or an unreadable input', async () => {
    const none = capture();
    expect(await main(['batch', '--input', 'x.jsonl'], none.io)).toBe(2);
    expect(none.stderr()).toContain('Invalid --stdio: give exactly one of --stdio <command> or --url <url>');
    const missing = capture();
    expect(await main(['batch', '--input', join(dir, 'nope.jsonl'), '--url', server.url], missing.io)).toBe(
      2,
    );
    expect(missing.stderr()).toContain(`cannot read --input ${join(dir, 'nope.jsonl')}`);
  });

  it('checks every flag before reading the input or creating the journal', async () => {
    const journal = join(dir, 'never.journal.jsonl');
    const missing = join(dir, 'missing.jsonl');
    const unclosed = capture();
    expect(
      await main(
        ['batch', '--input', missing, '--stdio', 'node "server.js', '--journal', journal],
        unclosed.io,
      ),
    ).toBe(2);
    expect(unclosed.stderr()).toBe('mcp-tx: Invalid --stdio: unclosed " quote\n');
    expect(existsSync(journal)).toBe(false);

    const secret = capture();
    const url = 'http://alice:hunter2@127.0.0.1:9/mcp';
    expect(await main(['batch', '--input', missing, '--url', url], secret.io)).toBe(2);
    expect(secret.stderr()).toBe(
      'mcp-tx: Invalid --url: must not contain a user name or password (fetch refuses them)\n',
    );

    const input = await inputFile([charge('never')]);
    const sameFiles = [
      [['--out', input], 'Invalid --out: must not be the --input file'],
      [
        ['--out', journal, '--journal', `${dir}/./never.journal.jsonl`],
        'Invalid --out: must not be the --journal file',
      ],
      [['--journal', input], 'Invalid --journal: must not be the --input file'],
    ] as const;
    for (const [flags, message] of sameFiles) {
      const run = capture();
      expect(await main(['batch', '--input', input, '--url', server.url, ...flags], run.io)).toBe(2);
      expect(run.stderr()).toBe(`mcp-tx: ${message}\n`);
    }
    expect(await readFile(input, 'utf8')).toBe(`${JSON.stringify(charge('never'))}\n`);
    expect(server.state.requests.never).toBeUndefined();
  });

  it('stops at once with exit 130 when interrupted while the --url server has not answered initialize', async () => {
    let requests = 0;
    const silent = createServer(() => {
      requests += 1; // and never answer
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`;
    try {
      const input = await inputFile([charge('i1')]);
      const run = capture();
      const startedAt = Date.now();
      const exit = main(['batch', '--input', input, '--url', url, '--timeout', '60000'], run.io);
      await until(() => requests > 0, 10_000);
      run.interrupt.abort();
      expect(await exit).toBe(130);
      expect(Date.now() - startedAt).toBeLessThan(10_000);
      expect(run.stderr()).toContain(`mcp-tx: interrupted while connecting to --url ${url}\n`);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('says it cannot connect to an unreachable --url and exits 1', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const input = await inputFile([charge('u1')]);
    const run = capture();
    const url = `http://127.0.0.1:${port}/mcp`;
    expect(await main(['batch', '--input', input, '--url', url], run.io)).toBe(1);
    expect(run.stderr()).toContain(
      `mcp-tx: cannot connect to --url ${url}: fetch failed (connect ECONNREFUSED`,
    );
  });

  it('says it cannot start a failing --stdio command, with what the command printed, and exits 1', async () => {
    const input = await inputFile([charge('u2')]);
    const missing = capture();
    expect(
      await main(['batch', '--input', input, '--stdio', 'mcp-tx-no-such-server --flag'], missing.io),
    ).toBe(1);
    expect(missing.stderr()).toContain(
      'mcp-tx: cannot start --stdio "mcp-tx-no-such-server --flag": spawn mcp-tx-no-such-server ENOENT',
    );
    const crashing = capture();
    const command = `"${process.execPath}" -e "console.error('no config file'); process.exit(3)"`;
    expect(await main(['batch', '--input', input, '--stdio', command], crashing.io)).toBe(1);
    expect(crashing.stderr()).toContain('(its stderr: no config file): MCP error -32000: Connection closed');
  });

  it('redacts the secrets of a failing --stdio command line and of what it printed on stderr', async () => {
    const input = await inputFile([charge('u3')]);
    const run = capture();
    const printed = [
      'connecting to postgres://admin:pg-hunter2-pw@db.internal:5432/shop',
      'password=correct-horse-battery',
      'token=tok_9f8e7d6c5b4a',
    ].join('\\n');
    const script = `console.error('${printed}'); process.exit(3)`;
    const secrets =
      '--api-key=sk-proj-AbCdEf0123456789XyZ --db postgres://admin:pg-hunter2-pw@db.internal/shop';
    const command = `"${process.execPath}" -e "${script}" -- ${secrets} password=cli-s3cret-pw`;
    expect(await main(['batch', '--input', input, '--stdio', command], run.io)).toBe(1);

    const said = run.stderr();
    expect(said).toContain('mcp-tx: cannot start --stdio "');
    expect(said).toContain('(its stderr: connecting to postgres://[REDACTED]@db.internal:5432/shop');
    expect(said).toContain('--api-key=[REDACTED]');
    for (const secret of [
      'pg-hunter2-pw',
      'correct-horse-battery',
      'tok_9f8e7d6c5b4a',
      'sk-proj-',
      'cli-s3cret-pw',
    ]) {
      expect(said).not.toContain(secret);
    }
  });
});

describe('splitCommand', () => {
  it('splits on spaces, keeps quoted words whole, and unescapes', () => {
    expect(splitCommand(`node  "my server.js" --name 'a "b"' a\\ b "q\\"x\\\\"`)).toEqual({
      command: 'node',
      args: ['my server.js', '--name', 'a "b"', 'a b', 'q"x\\'],
    });
    expect(splitCommand(`run '' x`)).toEqual({ command: 'run', args: ['', 'x'] });
  });

  it('refuses an unclosed quote and an empty command', () => {
    expect(() => splitCommand(`node "server.js`)).toThrow('unclosed " quote');
    expect(() => splitCommand('   ')).toThrow('must name a command');
  });
});
