import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRYABLE_ERRORS } from '../../../src/config/retryPolicy.js';
import { classifyToolError, resultText } from '../../../src/core/classify.js';
import { TxErrorCode } from '../../../src/core/errors.js';

describe('classifyToolError: the error_code a server answers with', () => {
  it.each([
    // the Python MCP-Tx 0.1.0's codes
    ['MCP_TX_ERROR', 'card declined', TxErrorCode.ToolError, false],
    ['MCP_TX_ERROR', 'TEMPORARY_FAILURE: bank busy', TxErrorCode.ToolError, true],
    ['UNKNOWN_ERROR', 'ValueError: bad order', TxErrorCode.ToolError, false],
    ['UNKNOWN_ERROR', 'TEMPORARY_FAILURE: upstream busy', TxErrorCode.ToolError, true],
    ['MCP_TX_SEQUENCE_ERROR', 'step 3 before step 2', TxErrorCode.ProtocolError, false],
    ['MCP_TX_SEQUENCE_ERROR', 'TIMEOUT in sequence', TxErrorCode.ProtocolError, false],
    ['MCP_TX_TIMEOUT', 'upstream timed out', TxErrorCode.Timeout, true],
    ['MCP_TX_NETWORK_ERROR', 'upstream unreachable', TxErrorCode.NetworkError, true],
    // mcp-tx's own, as a txTool server answers them
    ['MCP_TX_IN_PROGRESS', 'charge:k1 is in progress', TxErrorCode.InProgress, true],
    ['MCP_TX_IDEMPOTENCY_CONFLICT', 'other arguments', TxErrorCode.IdempotencyConflict, false],
    ['MCP_TX_TOOL_ERROR', 'boom', TxErrorCode.ToolError, false],
    ['MCP_TX_TOOL_ERROR', 'NETWORK_ERROR: reset', TxErrorCode.ToolError, true],
    // a code nobody defines: a tool error, read by its text
    ['SOMETHING_ELSE', 'nope', TxErrorCode.ToolError, false],
  ] as const)('%s (%s) → %s, retryable %s, the server code kept', (serverCode, text, code, retryable) => {
    const error = classifyToolError(
      text,
      { error_code: serverCode, error_message: text },
      DEFAULT_RETRYABLE_ERRORS,
    );
    expect(error).toMatchObject({
      code,
      retryable,
      ambiguous: false,
      serverErrorCode: serverCode,
      message: text,
    });
  });

  it('reads a code that marks retryable as a marker of a tool error (UNKNOWN_ERROR, when configured)', () => {
    const markers = [...DEFAULT_RETRYABLE_ERRORS, 'UNKNOWN_ERROR'];
    expect(classifyToolError('ValueError', { error_code: 'UNKNOWN_ERROR' }, markers).retryable).toBe(true);
  });

  it('without a code: a protocol error the SDK wrapped is never retried, anything else is a tool error', () => {
    const rpc = classifyToolError(
      'MCP error -32602: Tool nope not found',
      undefined,
      DEFAULT_RETRYABLE_ERRORS,
    );
    expect(rpc).toMatchObject({ code: TxErrorCode.ProtocolError, retryable: false });
    expect(rpc.serverErrorCode).toBeUndefined();
    const tool = classifyToolError('TEMPORARY_FAILURE: busy', {}, DEFAULT_RETRYABLE_ERRORS);
    expect(tool).toMatchObject({ code: TxErrorCode.ToolError, retryable: true });
    expect(classifyToolError('', undefined, DEFAULT_RETRYABLE_ERRORS).message).toBe('Tool returned an error');
  });

  it('keeps the server’s retry-after hint, and the server code through withMeta and withRetryable', () => {
    const error = classifyToolError('busy', { error_code: 'MCP_TX_IN_PROGRESS', retry_after_ms: 250 }, []);
    expect(error.retryAfterMs).toBe(250);
    expect(error.withRetryable(false, 'given up').serverErrorCode).toBe('MCP_TX_IN_PROGRESS');
  });

  it('ignores an error_code that is not a string', () => {
    const error = classifyToolError('boom', { error_code: 42 as unknown as string }, []);
    expect(error).toMatchObject({ code: TxErrorCode.ToolError });
    expect(error.serverErrorCode).toBeUndefined();
  });
});

describe('resultText: the text of a result', () => {
  it('joins the text items with newlines and skips the others', () => {
    expect(
      resultText([
        { type: 'text', text: 'first' },
        { type: 'image', text: 'not text' },
        { type: 'text', text: 'second' },
        { type: 'text', text: 7 },
      ]),
    ).toBe('first\nsecond');
    expect(resultText([{ type: 'text', text: 'only' }])).toBe('only');
  });

  it('is empty without content or without text items', () => {
    expect(resultText(undefined)).toBe('');
    expect(resultText([])).toBe('');
    expect(resultText([{ type: 'image' }])).toBe('');
  });
});
