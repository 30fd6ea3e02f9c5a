/**
 * `createMcpTx(connect)` over Streamable HTTP with a server process killed and started again on the
 * same port mid-burst: the old session is gone (the new process answers `404`, or nothing answers
 * while it starts), and mcp-tx starts a new one; its txTool store and effects are in Redis.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionState, createMcpTx, type McpTx, perRequestSignalFetch } from '../../src/index.js';
import { scriptArgs } from '../support/childScript.js';
import { until } from '../support/fixture.js';
import { redisUrl, testRedis } from '../support/redis.js';

const serverScript = new URL('../support/sessionHttpServerMain.ts', import.meta.url).pathname;
const { redis, prefix } = testRedis();

let tx: McpTx | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  await tx?.close({ timeoutMs: 1_000 });
  tx = undefined;
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts the server process on `port` (0: a spare one); resolves with it and its port once it listens. */
async function startServer(port: number, run: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, scriptArgs(serverScript), {
    env: { ...process.env, PORT: String(port), PREFIX: run, REDIS_URL: redisUrl },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await until(() => output.includes('\n') || child.exitCode !== null, 20_000);
  const listening = /listening (\d+)/.exec(output);
  if (listening === null) throw new Error(`the server did not start (exit ${child.exitCode})`);
  return { child, port: Number(listening[1]) };
}

describe('a Streamable HTTP server process restarted on the same port mid-burst', () => {
  it('completes every keyed call in a new session, each effect once', async () => {
    const run = `${prefix}http:`;
    const { child: first, port } = await startServer(0, run);
    const url = new URL(`http://127.0.0.1:${port}/mcp`);
    const http = createMcpTx(
      () => new StreamableHTTPClientTransport(url, { fetch: perRequestSignalFetch() }),
      {
        retry: { maxAttempts: 20, baseDelayMs: 20, maxDelayMs: 500 },
        reconnect: { baseDelayMs: 20, maxDelayMs: 500 },
      },
    );
    tx = http;
    const states: ConnectionState[] = [];
    http.connection$.subscribe((state) => states.push(state));

    let finished = 0;
    const ids = Array.from({ length: 200 }, (_, index) => `h${index}`);
    const burst = lastValueFrom(
      from(ids).pipe(
        mergeMap(
          (id) =>
            http.call('charge', { id, workMs: 10 }, { idempotencyKey: id }).finally(() => {
              finished += 1;
            }),
          8,
        ),
        toArray(),
      ),
    );
    await until(() => finished >= 60, 30_000);
    first.kill('SIGKILL');
    await once(first, 'exit');
    await startServer(port, run);
    const results = await burst;

    expect(results.map((result) => result.meta.status)).toEqual(ids.map(() => 'completed'));
    const charges = await redis.hgetall(`${run}charges`);
    expect(Object.keys(charges)).toHaveLength(200);
    expect(Object.values(charges).every((count) => count === '1')).toBe(true);
    const connected = states.filter(({ state }) => state === 'connected');
    expect(connected.length).toBeGreaterThanOrEqual(2);
    expect(states.some(({ state }) => state === 'reconnecting')).toBe(true);
    expect(results.some((result) => result.meta.attempts > 1)).toBe(true);
  }, 60_000);
});
