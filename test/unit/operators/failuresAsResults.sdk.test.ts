import { lastValueFrom, map, throwError } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { failuresAsResults } from '../../../operators/failuresAsResults.js';
import { TxCall, TxErrorCode } from '../../../src/index.js';
import { connectFixture, type Fixture } from '../../support/fixture.js';

let fixture: Fixture;
afterEach(async () => {
  await fixture?.close();
});

describe('failuresAsResults', () => {
  it('passes a success through untouched', async () => {
    fixture = await connectFixture();
    const { data, meta } = await lastValueFrom(
      fixture.tx.call$('echo', { value: 1 }).pipe(failuresAsResults()),
    );
    expect(data).toEqual({ value: 1 });
    expect(meta).toMatchObject({ ack: true, status: 'completed' });
  });

  it('turns a tool failure into a result with ack false and the error in meta', async () => {
    fixture = await connectFixture();
    const call = fixture.tx.call$('boom', { message: 'card declined' });
    const outcome = await lastValueFrom(call.pipe(failuresAsResults()));
    expect(outcome.meta).toMatchObject({
      requestId: call.request.requestId,
      ack: false,
      processed: false,
      status: 'failed',
      attempts: 1,
      errorCode: TxErrorCode.ToolError,
      errorMessage: 'card declined',
    });
    expect(outcome.result).toEqual({ content: [{ type: 'text', text: 'card declined' }], isError: true });
    expect(Object.isFrozen(outcome.meta)).toBe(true);
  });

  it('reports bad input as a rejected result with nothing sent', async () => {
    fixture = await connectFixture();
    const outcome = await lastValueFrom(fixture.tx.call$('', {}).pipe(failuresAsResults()));
    expect(outcome.meta).toMatchObject({
      status: 'rejected',
      attempts: 0,
      errorCode: TxErrorCode.Validation,
    });
    expect(fixture.seen).toHaveLength(0);
  });

  it('still errors on what is not a TxError, and keeps the request in the pipeline', async () => {
    fixture = await connectFixture();
    const bug = new Error('bug in a map');
    const call = fixture.tx.call$('echo', {}).pipe(
      map(() => {
        throw bug;
      }),
      failuresAsResults(),
    );
    expect(call).toBeInstanceOf(TxCall);
    await expect(lastValueFrom(call)).rejects.toBe(bug);
    expect(() => failuresAsResults()(throwError(() => bug))).toThrowError(
      expect.objectContaining({ code: TxErrorCode.Validation }),
    );
  });
});
