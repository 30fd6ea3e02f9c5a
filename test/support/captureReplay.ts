/**
 * Replays the client's side of a wire capture to a server in a child process over stdio: each
 * client->server line is written to the child's stdin byte for byte, in the capture's order and
 * with its pacing — a line goes once every answer that came before it in the capture has come here
 * too, and as long after the line before it as it did in the capture. The child's answers are
 * matched by JSON-RPC id.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { scriptArgs } from './childScript.js';
import type { CapturedLine, CapturedMessage } from './pythonCaptures.js';

/** An answer of the child: the message, and when it came (ms after the replay started). */
export interface ReplayedAnswer {
  readonly message: CapturedMessage & { readonly jsonrpc?: string };
  readonly atMs: number;
}

/** What a replay saw: the child's answers by JSON-RPC id, when each line was written, its stderr. */
export interface Replay {
  readonly answers: ReadonlyMap<number | string, ReplayedAnswer>;
  /** When each client->server line was written (ms after the start), by its JSON-RPC id. */
  readonly sentAtMs: ReadonlyMap<number | string, number>;
  /** Lines of stdout that were no JSON-RPC answer (notifications, anything else). */
  readonly other: readonly string[];
  readonly stderr: string;
}

/** How long to wait for one answer before the replay fails (a loaded 2-core machine: generous). */
const ANSWER_TIMEOUT_MS = 30_000;

/**
 * Starts `<script> ...args` in a child process (see `scriptArgs`), replays `capture` to it, waits for the answer to
 * every request it wrote, and ends the child.
 */
export async function replayCapture(
  capture: readonly CapturedLine[],
  script: string,
  args: readonly string[] = [],
): Promise<Replay> {
  const child = spawn(process.execPath, [...scriptArgs(script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  try {
    return await replayTo(child, capture);
  } finally {
    child.stdin.end();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
}

async function replayTo(
  child: ChildProcessWithoutNullStreams,
  capture: readonly CapturedLine[],
): Promise<Replay> {
  const started = performance.now();
  const now = () => performance.now() - started;
  const answers = new Map<number | string, ReplayedAnswer>();
  const sentAtMs = new Map<number | string, number>();
  const other: string[] = [];
  let stderr = '';
  let exited: string | undefined;
  const waiters = new Set<() => unknown>();
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.on('exit', (code, signal) => {
    exited = `the server exited (${signal ?? code}) before answering; its stderr:\n${stderr}`;
    wake();
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = parseMessage(line);
    if (message?.id !== undefined && message.method === undefined)
      answers.set(message.id, { message, atMs: now() });
    else other.push(line);
    wake();
  });
  /** The child's answer to request `id`, once it comes. */
  const answerTo = (id: number | string) =>
    new Promise<ReplayedAnswer>((resolve, reject) => {
      const settled = () => {
        const answer = answers.get(id);
        if (answer === undefined && exited === undefined) return false;
        clearTimeout(timer);
        waiters.delete(settled);
        if (answer !== undefined) resolve(answer);
        else reject(new Error(exited));
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(settled);
        reject(
          new Error(`no answer to request ${id} in ${ANSWER_TIMEOUT_MS} ms; the server's stderr:\n${stderr}`),
        );
      }, ANSWER_TIMEOUT_MS);
      if (!settled()) waiters.add(settled);
    });

  /** When each capture line happened here: written (client's) or answered (server's). */
  const happened: number[] = [];
  for (const [index, line] of capture.entries()) {
    if (line.dir === 'server->client') {
      // the client lines after this answer wait for it, as they did in the capture
      if (line.message.id !== undefined) happened[index] = (await answerTo(line.message.id)).atMs;
      continue;
    }
    const previous = index === 0 ? undefined : capture[index - 1];
    if (previous !== undefined) {
      const gapMs = (line.t - previous.t) * 1_000;
      const dueAt = (happened[index - 1] ?? 0) + gapMs;
      if (dueAt > now()) await new Promise((resolve) => setTimeout(resolve, dueAt - now()));
    }
    child.stdin.write(`${line.line}\n`);
    happened[index] = now();
    if (line.message.id !== undefined) sentAtMs.set(line.message.id, happened[index]);
  }
  await Promise.all([...sentAtMs.keys()].map(answerTo));
  return { answers, sentAtMs, other, stderr };
}

/** A line of the child's stdout as a JSON-RPC message; `undefined` when it is not JSON. */
function parseMessage(line: string): ReplayedAnswer['message'] | undefined {
  try {
    return JSON.parse(line) as ReplayedAnswer['message'];
  } catch {
    return undefined;
  }
}
