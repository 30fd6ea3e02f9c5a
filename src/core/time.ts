let cachedMs = Number.NaN;
let cachedIso = '';

/**
 * `new Date(ms).toISOString()`, remembering the last answer: a burst of calls in the same
 * millisecond formats the time once (formatting costs more than a call's own bookkeeping).
 *
 * @example
 * isoTime(0); // '1970-01-01T00:00:00.000Z'
 */
export function isoTime(ms: number): string {
  if (ms !== cachedMs) {
    cachedIso = new Date(ms).toISOString();
    cachedMs = ms;
  }
  return cachedIso;
}

/**
 * A timestamp as clients write it in `_meta.mcp_tx.timestamp`: `YYYY-MM-DD`, `T` (or a space),
 * `hh:mm:ss`, an optional fraction of 1–9 digits, then `Z`, an offset (`+02:00`, `+0200`, `+02`), or
 * nothing. Nothing (a "naive" time) is UTC: the Python MCP-Tx 0.1.0 sends `datetime.utcnow()`
 * that way, e.g. `2026-12-06T04:48:08.839832`.
 */
const WIRE_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

const DAY_MS = 86_400_000;
/** 400 Gregorian years, in days: the calendar repeats after them. */
const DAYS_IN_400_YEARS = 146_097;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Reads a wire timestamp (`_meta.mcp_tx.timestamp`) as milliseconds since the epoch, truncated to
 * the millisecond; `undefined` for anything else than an ISO 8601 date and time (a date alone, an
 * hour 24, a 31 April, a fraction without digits, trailing text…). A time without `Z` or offset is
 * read as UTC — the Python MCP-Tx 0.1.0 sends naive UTC with microseconds (and no fraction when they
 * are 0), mcp-tx sends `Z` and milliseconds; both read the same.
 *
 * @example
 * parseWireTimestamp('2026-12-06T04:48:08.839832'); // 1796532488839 (naive: UTC)
 * parseWireTimestamp('2026-12-06T04:52:50.953Z'); // 1796532770953
 * parseWireTimestamp('2026-12-06T05:48:08+01:00'); // 1796532488000
 * parseWireTimestamp('yesterday'); // undefined
 */
export function parseWireTimestamp(text: unknown): number | undefined {
  if (typeof text !== 'string' || text.length > 40) return undefined;
  const match = WIRE_TIMESTAMP.exec(text);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [, , , , , , , fraction = '', zulu, sign, offsetHours = '0', offsetMinutes = '0'] = match;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const offsetMs = (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60_000;
  if (sign !== undefined && (Number(offsetHours) > 23 || Number(offsetMinutes) > 59)) return undefined;
  const millis = Math.floor(Number(fraction.padEnd(9, '0')) / 1_000_000);
  // Date.UTC reads the years 0–99 as 1900–1999: count them 400 years later, then go back
  const early = year < 100;
  const utc =
    Date.UTC(early ? year + 400 : year, month - 1, day, hour, minute, second, millis) -
    (early ? DAYS_IN_400_YEARS * DAY_MS : 0);
  if (zulu !== undefined || sign === undefined) return utc;
  return sign === '+' ? utc - offsetMs : utc + offsetMs;
}
