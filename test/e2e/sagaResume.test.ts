/**
 * A saga finished by `resume()` in another process after the first one was killed: child processes
 * over Streamable HTTP to one server, a JSONL event log between them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonlEventStore } from '../../src/node.js';
import { scriptArgs } from '../support/childScript.js';
import { type HttpServer, startHttpServer } from '../support/httpServer.js';

const run = promisify(execFile);
const sagaClient = fileURLToPath(new URL('../support/sagaClient.ts', import.meta.url));

describe('Saga across processes', () => {
  let server: HttpServer;
  let dir: string;
  beforeEach(async () => {
    server = await startHttpServer({ stateless: false });
    dir = await mkdtemp(join(tmpdir(), 'mcp-tx-saga-'));
  });
  afterEach(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is finished by resume() in another process after a crash, without running a step twice', async () => {
    const env = {
      ...process.env,
      MCP_URL: server.url.href,
      EVENTS_PATH: join(dir, 'sagas.jsonl'),
      SAGA_ID: 'saga-crash',
    };
    const crashed = await run(process.execPath, scriptArgs(sagaClient), {
      env: { ...env, CRASH_BEFORE_LOGGING: 'payment' },
    }).catch((error: { signal?: string }) => error);
    expect((crashed as { signal?: string }).signal).toBe('SIGKILL');
    expect(server.state.effects).toEqual({ 'reserve:o-1': 1, 'pay:o-1': 1 });

    const { stdout } = await run(process.execPath, scriptArgs(sagaClient), {
      env: { ...env, RESUME: '1' },
    });
    expect(JSON.parse(stdout)).toMatchObject({ sagaId: 'saga-crash', status: 'completed' });
    expect(server.state.effects).toEqual({ 'reserve:o-1': 1, 'pay:o-1': 1, 'ship:o-1': 1 });
    const log = await lastValueFrom(new JsonlEventStore(env.EVENTS_PATH).read$().pipe(toArray()));
    expect(log.at(-1)).toMatchObject({ type: 'SagaEnded', data: { status: 'completed' } });
  }, 30_000);
});
