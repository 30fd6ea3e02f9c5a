import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

const ID_BYTES = 16;
const pool = new Uint8Array(ID_BYTES * 256);
let offset = pool.length;

/** 16 random bytes from a pool refilled 4 KiB at a time (one system call per 256 ids, not one per id). */
function pooledRandom(): Uint8Array {
  if (offset >= pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = pool.subarray(offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return bytes;
}

/**
 * A new request id: a uuid v7 (time-ordered to the millisecond, 74 random bits).
 *
 * @example
 * newRequestId(); // '019ab3c2-5e1f-7a3b-9c4d-2e8f1a6b7c90'
 */
export function newRequestId(): string {
  return uuidv7({ rng: pooledRandom });
}
