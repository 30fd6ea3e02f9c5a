import { describe, expect, it } from 'vitest';
import { MAX_ERROR_MESSAGE_LENGTH, sanitizeMessage, TxError, TxErrorCode } from '../../src/index.js';

describe('sanitizeMessage', () => {
  it.each([
    ['password=hunter2', 'hunter2'],
    ['"api_key": "abc123xyz"', 'abc123xyz'],
    ['token: t0k3n-value', 't0k3n-value'],
    ['client_secret=s3cr3t&x=1', 's3cr3t'],
    ['Authorization: Bearer abcdefghijklmnop', 'abcdefghijklmnop'],
    ['key sk-ant-abcdefghijklmnopqrstuv', 'sk-ant-abcdefghijklmnopqrstuv'],
    ['gh token ghp_abcdefghijklmnopqrstuvwxyz0123', 'ghp_abcdefghijklmnopqrstuvwxyz0123'],
    ['aws AKIAABCDEFGHIJKLMNOP', 'AKIAABCDEFGHIJKLMNOP'],
    ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig', 'eyJzdWIiOiIxMjM0NTY3ODkwIn0'],
    ['connect redis://admin:pa55w0rd@db:6379 failed', 'pa55w0rd'],
    ['at /home/alice/projects/app.js:10', 'alice'],
    ['at /Users/bob/app.js', 'bob'],
    ['at C:\\Users\\carol\\app.js', 'carol'],
  ])('redacts %s', (message, secret) => {
    const sanitized = sanitizeMessage(message);
    expect(sanitized).not.toContain(secret);
  });

  it('keeps ordinary text as it is', () => {
    expect(sanitizeMessage('Tool get_weather failed: city not found')).toBe(
      'Tool get_weather failed: city not found',
    );
  });

  it('caps the length', () => {
    const sanitized = sanitizeMessage('x'.repeat(10_000));
    expect(sanitized.length).toBeLessThan(MAX_ERROR_MESSAGE_LENGTH + 20);
    expect(sanitized.endsWith('[truncated]')).toBe(true);
  });

  it('is applied to every TxError message', () => {
    const error = new TxError(TxErrorCode.ToolError, 'failed with password=hunter2');
    expect(error.message).toBe('failed with password=[REDACTED]');
  });
});
