/** Failures that say the server never got the request: retried like "Not connected", not ambiguous. */
import { describe, expect, it } from 'vitest';
import { classifyRejection, TxErrorCode } from '../../../src/index.js';

/** What the SDK's StreamableHTTPClientTransport throws for an HTTP error status. */
class StreamableHTTPError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`Streamable HTTP error: ${message}`);
  }
}

describe('a request that was not sent', () => {
  it('is not ambiguous when the server answered 404 for the session: it did not run it', () => {
    const error = classifyRejection(
      new StreamableHTTPError(404, 'Error POSTing to endpoint: Session not found'),
      false,
    );
    expect(error).toMatchObject({ code: TxErrorCode.NetworkError, retryable: true, ambiguous: false });
    expect(error.message).toContain('Not sent to the MCP server');
  });

  it('is not ambiguous when the connection was refused', () => {
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });
    expect(classifyRejection(refused, false)).toMatchObject({ retryable: true, ambiguous: false });
  });

  it('stays ambiguous for other HTTP statuses and broken connections', () => {
    expect(
      classifyRejection(new StreamableHTTPError(500, 'Error POSTing to endpoint: boom'), false).ambiguous,
    ).toBe(true);
    const reset = new TypeError('fetch failed', {
      cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    });
    expect(classifyRejection(reset, false).ambiguous).toBe(true);
  });
});
