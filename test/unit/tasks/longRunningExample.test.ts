import { describe, expect, it } from 'vitest';
import { main } from '../../../examples/long-running-task.js';

describe('examples/long-running-task.ts', () => {
  it('creates a task, drops the client, and resumes it from the log in a new one', async () => {
    const lines: string[] = [];
    const { taskId, data } = await main((line) => lines.push(line));
    expect(lines).toEqual([
      `created task ${taskId}`,
      `resuming ${taskId} (build)`,
      expect.stringMatching(/^result /),
    ]);
    expect(data).toEqual({ ref: 'v1.2.0', artifact: 'v1.2.0.tgz', aborted: false });
  });
});
