const ID_BYTES = 16;
/** `getRandomValues` fills at most 65 536 bytes per call; 4 KiB serves 256 ids. */
const pool = new Uint8Array(ID_BYTES * 256);
let offset = pool.length;

/** The two hex digits of every byte: formatting is one table read per byte. */
const HEX: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** The last millisecond an id was made in and its formatted time part (see `timePrefixOf`). */
let lastMillis = -1;
let timePrefix = '';

/**
 * The start of 16 fresh random bytes in `pool`, refilled from `globalThis.crypto.getRandomValues`
 * (Web Crypto: Node 20 and every browser) 4 KiB at a time: one call per 256 ids, not one per id.
 */
function nextRandomOffset(): number {
  if (offset >= pool.length) {
    globalThis.crypto.getRandomValues(pool);
    offset = 0;
  }
  const start = offset;
  offset += ID_BYTES;
  return start;
}

const byteAt = (index: number): number => pool[index] ?? 0;
const hexOf = (byte: number): string => HEX[byte] ?? '';

/** `tttttttt-tttt-`: the 48-bit milliseconds in hex, formatted once per millisecond. */
function timePrefixOf(millis: number): string {
  if (millis !== lastMillis) {
    const hex = millis.toString(16).padStart(12, '0');
    timePrefix = `${hex.slice(0, 8)}-${hex.slice(8)}-`;
    lastMillis = millis;
  }
  return timePrefix;
}

/**
 * A new request id: a uuid v7 (RFC 9562: 48-bit Unix milliseconds, version 7, variant 10, 74
 * random bits), time-ordered to the millisecond. Browser-safe (Web Crypto, no Node built-in).
 *
 * @example
 * newRequestId(); // '019ab3c2-5e1f-7a3b-9c4d-2e8f1a6b7c90'
 */
export function newRequestId(): string {
  const r = nextRandomOffset();
  return (
    timePrefixOf(Date.now()) +
    hexOf(0x70 | (byteAt(r + 6) & 0x0f)) +
    hexOf(byteAt(r + 7)) +
    '-' +
    hexOf(0x80 | (byteAt(r + 8) & 0x3f)) +
    hexOf(byteAt(r + 9)) +
    '-' +
    hexOf(byteAt(r + 10)) +
    hexOf(byteAt(r + 11)) +
    hexOf(byteAt(r + 12)) +
    hexOf(byteAt(r + 13)) +
    hexOf(byteAt(r + 14)) +
    hexOf(byteAt(r + 15))
  );
}
