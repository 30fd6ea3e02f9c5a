import { describe, expect, it } from 'vitest';
import { main as reconnect } from '../../examples/reconnect.js';

describe('examples/reconnect.ts', () => {
  it('kills the server mid-burst, and every call completes on the one started in its place', async () => {
    const lines: string[] = [];
    const summary = await reconnect((line) => lines.push(line));
    expect(summary).toMatchObject({ completed: 40, servers: 2, answeredBy: 2 });
    expect(summary.retried).toBeGreaterThan(0);
    expect(lines).toContain('connection: connected');
    expect(lines.some((line) => line.startsWith('connection: reconnecting (attempt 1)'))).toBe(true);
    expect(lines.at(-1)).toBe('connection: closed');
  }, 60_000);
});
