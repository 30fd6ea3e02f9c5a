import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime, parseWireTimestamp } from '../../../src/core/time.js';
import { readCapture } from '../../support/pythonCaptures.js';
import { fuzz } from './fuzz.js';

const CAPTURES = [
  'python-client-to-ts-server.jsonl',
  'python-client-timeout-retry.jsonl',
  'ts-client-to-python-tx-server.jsonl',
] as const;

/** The client's `tools/call` lines of a capture that carry a timestamp, with their retry_count. */
const stamped = (name: string) =>
  readCapture(name).flatMap(({ dir, t, message }) => {
    const wire = message.params?._meta?.mcp_tx;
    if (dir !== 'client->server' || typeof wire?.timestamp !== 'string') return [];
    return [{ t, timestamp: wire.timestamp, requestId: wire.request_id, retryCount: wire.retry_count }];
  });

describe('parseWireTimestamp', () => {
  it.each(CAPTURES)('reads every timestamp of %s as UTC, within a second of when it was captured', (name) => {
    const lines = stamped(name);
    expect(lines.length).toBeGreaterThan(3);
    for (const { t, timestamp, retryCount } of lines) {
      const ms = parseWireTimestamp(timestamp);
      expect(ms, timestamp).toBeTypeOf('number');
      // a first attempt is stamped as it is sent; a naive time read as local would be hours off
      if (retryCount === 0) expect(Math.abs((ms as number) - t * 1_000), timestamp).toBeLessThan(1_000);
    }
  });

  it('reads the Python retries’ timestamp as their first attempt’s: Python does not refresh it', () => {
    const lines = stamped('python-client-timeout-retry.jsonl');
    const retries = lines.filter(({ retryCount }) => retryCount === 1);
    expect(retries).toHaveLength(2);
    for (const retry of retries) {
      const first = lines.find(
        ({ requestId, retryCount }) => requestId === retry.requestId && retryCount === 0,
      );
      expect(retry.timestamp).toBe(first?.timestamp);
      expect((retry.t - (first?.t ?? 0)) * 1_000).toBeGreaterThan(1_000); // sent after the 1 s timeout
    }
  });

  it('reads a naive time (no Z, no offset) as UTC, in both precisions', () => {
    expect(parseWireTimestamp('2026-12-06T04:48:08.839832')).toBe(Date.parse('2026-12-06T04:48:08.839Z'));
    expect(parseWireTimestamp('2026-12-06T04:48:08.839')).toBe(Date.parse('2026-12-06T04:48:08.839Z'));
    // Python's isoformat() leaves the fraction out when the microseconds are 0
    expect(parseWireTimestamp('2026-12-06T04:48:08')).toBe(Date.parse('2026-12-06T04:48:08.000Z'));
    expect(parseWireTimestamp('2026-12-06 04:48:08.5')).toBe(Date.parse('2026-12-06T04:48:08.500Z'));
  });

  it.each([
    ['2026-12-06T04:52:50.953Z', '2026-12-06T04:52:50.953Z'],
    ['2026-12-06T04:52:50Z', '2026-12-06T04:52:50.000Z'],
    ['2026-12-06t04:52:50.9z', '2026-12-06T04:52:50.900Z'],
    ['2026-12-06T04:52:50.123456789Z', '2026-12-06T04:52:50.123Z'],
    ['2026-12-06T04:52:50.999999999Z', '2026-12-06T04:52:50.999Z'], // truncated, never rounded into the next second
    ['2026-12-06T05:52:50.953+01:00', '2026-12-06T04:52:50.953Z'],
    ['2026-12-06T05:52:50.953+0100', '2026-12-06T04:52:50.953Z'],
    ['2026-12-06T05:52:50.953+01', '2026-12-06T04:52:50.953Z'],
    ['2026-12-05T23:22:50-05:30', '2026-12-06T04:52:50.000Z'],
    ['2026-12-06T04:52:50-00:00', '2026-12-06T04:52:50.000Z'],
    ['2024-02-29T00:00:00', '2024-02-29T00:00:00.000Z'],
    ['2000-02-29T23:59:59.999', '2000-02-29T23:59:59.999Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ['0099-12-31T23:59:59Z', '0099-12-31T23:59:59.000Z'],
  ])('reads %s as %s', (text, iso) => {
    expect(parseWireTimestamp(text)).toBe(Date.parse(iso));
  });

  it.each([
    '',
    'yesterday',
    '2026-12-06', // a date alone
    '04:48:08',
    '2026-12-06T04:48', // no seconds
    '2026-12-06T04:48:08.', // a point without digits
    '2026-12-06T04:48:08.1234567890', // ten digits
    '2026-12-06T24:00:00',
    '2026-12-06T04:60:00',
    '2026-12-06T04:48:60',
    '2026-13-06T04:48:08',
    '2026-00-06T04:48:08',
    '2026-04-31T04:48:08',
    '2023-02-29T04:48:08',
    '1900-02-29T04:48:08',
    '2026-12-00T04:48:08',
    '2026-12-06T04:48:08+24:00',
    '2026-12-06T04:48:08+01:60',
    '2026-12-06T04:48:08+1',
    '2026-12-06T04:48:08ZZ',
    '2026-12-06T04:48:08Z ',
    ' 2026-12-06T04:48:08Z',
    '2026-12-06T04:48:08.839832\n',
    '+002026-12-06T04:48:08Z',
    '２０２６-12-06T04:48:08', // full-width digits
    `2026-12-06T04:48:08.${'1'.repeat(100)}`,
  ])('refuses %j', (text) => {
    expect(parseWireTimestamp(text)).toBeUndefined();
  });

  it.each([undefined, null, 1796532488839, {}, ['2026-12-06T04:48:08']])(
    'refuses %j (not a string)',
    (value) => {
      expect(parseWireTimestamp(value)).toBeUndefined();
    },
  );

  it('reads back what mcp-tx writes, and any time written naive with 0 to 9 fraction digits', () => {
    const times = fc.date({
      min: new Date('0000-01-01T00:00:00.000Z'),
      max: new Date('9999-12-31T23:59:59.999Z'),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(times, fc.integer({ min: 0, max: 9 }), fc.nat(999_999), (date, digits, below) => {
        const ms = date.getTime();
        expect(parseWireTimestamp(isoTime(ms))).toBe(ms);
        // naive, as Python writes it, with the fraction cut or lengthened to `digits`
        const [seconds = '', millis = ''] = isoTime(ms).slice(0, -1).split('.');
        const fraction = `${millis}${String(below).padStart(6, '0')}`.slice(0, digits);
        const naive = digits === 0 ? seconds : `${seconds}.${fraction}`;
        const unit = 10 ** Math.max(0, 3 - digits); // what the fewer digits still tell
        expect(parseWireTimestamp(naive), naive).toBe(Math.floor(ms / unit) * unit);
      }),
      fuzz(300),
    );
  });
});
