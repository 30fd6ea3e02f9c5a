import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { scriptArgs } from '../support/childScript.js';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./chaosRun.ts', import.meta.url));

describe('chaos', () => {
  it('completes 2 000 keyed calls through ~30 % injected faults, each side effect exactly once, and exits on its own', async () => {
    // A child process: if a timer or subscription were left behind it would not exit, and this would time out.
    const { stdout } = await run(process.execPath, scriptArgs(script), {
      env: { ...process.env, CHAOS_CALLS: '2000' },
      timeout: 60_000,
    });
    const figures = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    console.log('chaos figures', figures);
    expect(figures).toMatchObject({ calls: 2000, completed: 2000, failed: 0, unhandledRejections: 0 });
    expect(figures.distinctKeysExecuted).toBe(2000);
    expect(figures.sideEffects).toBe(2000);
    const { failedSends, droppedResponses, disconnects } = figures.faults;
    expect((failedSends + droppedResponses + disconnects) / figures.attempts).toBeGreaterThan(0.2);
    expect(disconnects).toBeGreaterThan(0);
  }, 70_000);
});
