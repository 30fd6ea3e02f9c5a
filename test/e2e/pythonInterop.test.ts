/**
 * Golden tests: the Python MCP-Tx 0.1.0 client's side of the wire captures in
 * `../shared/interop/python-mcp-tx-0.1.0/`, replayed byte for byte (initialize, initialized, every
 * tools/call, tools/list) to a `txTool` server in a child process over stdio. Each answer must be
 * what mcp-tx answered in the capture — except where that answer was the bug, which each test names:
 * a retry with the same `request_id` and no idempotency key ran the tool again.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Replay, replayCapture } from '../support/captureReplay.js';
import { type CapturedLine, type CapturedMessage, readCapture } from '../support/pythonCaptures.js';

const serverScript = fileURLToPath(new URL('../support/pythonInteropServer.ts', import.meta.url));

type Result = NonNullable<CapturedMessage['result']>;

/** The answer mcp-tx gave in the capture to request `id` (`undefined`: none came). */
const capturedResult = (capture: readonly CapturedLine[], id: number): Result | undefined =>
  capture.find(({ dir, message }) => dir === 'server->client' && message.id === id)?.message.result;

/** The MCP-Tx result meta mcp-tx answers a call with. */
const txMeta = (fields: { duplicate: boolean; attempts: number }) => ({
  mcp_tx: { ack: true, processed: true, final_status: 'completed', ...fields },
});

/** The initialize answer of the capture, now with the `dedupe` feature a txTool server advertises. */
function withDedupeFeature(captured: Result | undefined) {
  const result = captured as { capabilities: { experimental: { mcp_tx: { features: string[] } } } };
  const block = result.capabilities.experimental.mcp_tx;
  expect(block.features).toEqual(['ack', 'retry', 'idempotency', 'transactions']);
  return {
    ...result,
    capabilities: {
      ...result.capabilities,
      experimental: { mcp_tx: { ...block, features: [...block.features, 'dedupe'] } },
    },
  };
}

/**
 * Every request the capture's client sent was answered, without a JSON-RPC error, with what mcp-tx
 * answered in the capture, or with `changed[id]` where the answer is meant to differ now.
 */
function expectAnswers(replay: Replay, capture: readonly CapturedLine[], changed: Record<number, unknown>) {
  const requests = capture.filter(({ dir, message }) => dir === 'client->server' && message.id !== undefined);
  expect(requests.length).toBeGreaterThan(0);
  for (const { message } of requests) {
    const id = message.id as number;
    const answer = replay.answers.get(id)?.message;
    expect(answer, `answer to ${message.method} ${id}`).toMatchObject({ jsonrpc: '2.0', id });
    expect(answer?.error, `answer to ${id}`).toBeUndefined();
    const expected = id in changed ? changed[id] : capturedResult(capture, id);
    expect(expected, `the capture answered request ${id}, or the test says what to answer`).toBeDefined();
    expect(answer?.result, `answer to ${message.method} ${id} (${message.params?.name ?? ''})`).toEqual(
      expected,
    );
  }
  expect(replay.other).toEqual([]); // nothing else on stdout
}

/** The text of the single content item of a result. */
const textOf = (result: Result | undefined) => result?.content?.[0]?.text;

// Each replay has its own server process and mostly waits (timeouts, a slow tool): run side by side.
describe.concurrent('the Python MCP-Tx client, replayed to a txTool server over stdio', () => {
  it('python-client-to-ts-server: a key replayed, a conflict, a tool error, an unkeyed call — and its same-request_id timeout retry run once', async () => {
    const capture = readCapture('python-client-to-ts-server.jsonl');
    // the lines are what the capture says they are
    const lookups = capture.filter(({ message }) => message.params?.name === 'lookup');
    expect(lookups.map(({ message }) => message.params?._meta?.mcp_tx)).toEqual([
      expect.objectContaining({ request_id: 'b9798744-b1bf-432c-a914-8429c392b570', retry_count: 0 }),
      expect.objectContaining({ request_id: 'b9798744-b1bf-432c-a914-8429c392b570', retry_count: 1 }),
    ]);
    expect(lookups.map(({ message }) => message.params?._meta?.mcp_tx?.idempotency_key)).toEqual([
      undefined,
      undefined,
    ]);
    expect(capturedResult(capture, 7)).toBeUndefined(); // the demo's lookup hung; Python sent no cancel
    expect(capturedResult(capture, 8)?._meta).toBeUndefined(); // and its lookup was no txTool

    const replay = await replayCapture(capture, serverScript, ['--profile', 'demo']);

    const lookupAnswer = capturedResult(capture, 8)?.content; // {"sku":"sku-26","cents":525}
    expectAnswers(replay, capture, {
      0: withDedupeFeature(capturedResult(capture, 0)),
      // ids 1–6 as captured: completed, duplicate (same key), conflict (same key, other
      // arguments), TEMPORARY_FAILURE (MCP_TX_TOOL_ERROR), the same key run again, an unkeyed call
      // the first lookup, slow here (1.5 s) where the demo's hung: it completes
      7: { _meta: txMeta({ duplicate: false, attempts: 1 }), content: lookupAnswer },
      // its retry (same request_id, retry_count 1, no key) joins it: the lookup ran once
      8: { _meta: txMeta({ duplicate: true, attempts: 2 }), content: lookupAnswer },
      // the server's counts: each order charged once (py-4 ran twice, its first run failed), one lookup
      9: {
        content: [
          {
            type: 'text',
            text: JSON.stringify({
              charges: JSON.parse(textOf(capturedResult(capture, 9)) ?? '').charges,
              runs: { 'py-1': 1, 'py-4': 2, 'py-2': 1 },
              lookups: { 'sku-26': 1 },
            }),
          },
        ],
      },
    });
    expect(JSON.parse(textOf(capturedResult(capture, 9)) ?? '')).toEqual({
      charges: { 'py-1': 1, 'py-4': 1, 'py-2': 1 },
    });
    // the retry was sent while the first lookup still ran (1.1 s after it, as in the capture)
    const sent7 = replay.sentAtMs.get(7) ?? 0;
    expect((replay.sentAtMs.get(8) ?? 0) - sent7).toBeGreaterThanOrEqual(1_000);
  }, 90_000);

  it('python-client-timeout-retry: keyed and unkeyed retries after a 1 s client timeout, to a 1.5 s tool: each runs once', async () => {
    const capture = readCapture('python-client-timeout-retry.jsonl');
    const captured4 = capturedResult(capture, 4);
    // what the capture shows: the unkeyed retry ran the charge a second time
    expect(captured4?._meta?.mcp_tx).toMatchObject({ duplicate: false, attempts: 2 });
    expect(JSON.parse(textOf(capturedResult(capture, 5)) ?? '')).toEqual({
      charges: { 'slow-keyed': 1, 'slow-unkeyed': 2 },
      runs: { 'slow-keyed': 1, 'slow-unkeyed': 2 },
    });

    const replay = await replayCapture(capture, serverScript, ['--profile', 'slow', '--slow-ms', '1500']);

    expectAnswers(replay, capture, {
      0: withDedupeFeature(capturedResult(capture, 0)),
      // 1: the keyed charge, completed; 2: its retry (same key and request_id) joined it, a
      // duplicate — both as captured; 3: the unkeyed charge, completed, as captured
      // 4: its retry, same request_id and no key: joined, not run again (the capture ran it twice)
      4: { ...captured4, _meta: txMeta({ duplicate: true, attempts: 2 }) },
      5: {
        content: [
          {
            type: 'text',
            text: JSON.stringify({
              charges: { 'slow-keyed': 1, 'slow-unkeyed': 1 },
              runs: { 'slow-keyed': 1, 'slow-unkeyed': 1 },
            }),
          },
        ],
      },
    });
  }, 90_000);
});
