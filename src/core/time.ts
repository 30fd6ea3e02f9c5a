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
