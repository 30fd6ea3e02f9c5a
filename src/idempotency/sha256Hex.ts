import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

/**
 * The sha256 (hex) of a text's UTF-8 in pure JS (`@noble/hashes`): what browsers and other
 * runtimes without `node:crypto` use.
 *
 * @example
 * portableSha256Hex('abc'); // 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
 */
export function portableSha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/**
 * Node's native `crypto.hash` when the runtime has it, looked up at run time
 * (`process.getBuiltinModule`, Node ≥ 20.16) so that a browser bundle imports no Node built-in.
 */
const nativeHash = globalThis.process?.getBuiltinModule?.('node:crypto')?.hash;

/**
 * The sha256 (hex) of a text's UTF-8, synchronous everywhere: Node's native `crypto.hash` (several
 * times faster on short texts) where it exists, the pure-JS one elsewhere. Both give the same value.
 *
 * @example
 * sha256Hex('abc') === portableSha256Hex('abc'); // true
 */
export const sha256Hex: (text: string) => string = nativeHash
  ? (text) => nativeHash('sha256', text, 'hex')
  : portableSha256Hex;
