import { describe, expect, it } from 'vitest';
import { main as quickstart } from '../examples/quickstart.js';

describe('examples', () => {
  it('quickstart: retries a flaky tool, creates each keyed order once, stops bad input', async () => {
    const lines: string[] = [];
    const summary = await quickstart((line) => lines.push(line));
    expect(summary).toEqual({ ordersCreated: 3, duplicates: 1, syncAttempts: 2, rejected: true });
    expect(lines[0]).toBe('connected; server speaks MCP-Tx: true');
    expect(lines.join('\n')).toContain('MCP_TX_VALIDATION');
  });
});
