import { describe, expect, it } from 'vitest';
import { main as quickstart } from '../examples/quickstart.js';

describe('examples', () => {
  it('quickstart calls a real server and shows the MCP-Tx metadata', async () => {
    const lines: string[] = [];
    const summary = await quickstart((line) => lines.push(line));
    expect(summary).toEqual({ ordersCreated: 3, results: 3, rejected: true });
    expect(lines[0]).toBe('connected; server speaks MCP-Tx: true');
    expect(lines.join('\n')).toContain('MCP_TX_VALIDATION');
  });
});
