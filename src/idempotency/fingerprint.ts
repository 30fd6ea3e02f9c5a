import { sha256Hex } from './sha256Hex.js';

/**
 * JSON with object keys sorted at every depth (arrays keep their order), so that equal arguments
 * give equal text whatever order their keys were written in. Like `JSON.stringify`, it drops
 * `undefined` object members and writes `undefined` array items as `null`.
 *
 * @example
 * canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }); // '{"a":[2,{"c":4,"d":3}],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return arrayJson(value);
  const record = value as Record<string, unknown>;
  let json = '{';
  for (const key of sortedKeys(record)) {
    const member = record[key];
    if (member === undefined) continue;
    if (json.length > 1) json += ',';
    json += `${keyJson(key)}:${canonicalJson(member)}`;
  }
  return `${json}}`;
}

/** The items in order; a hole in a sparse array is written as nothing, as earlier versions did. */
function arrayJson(items: readonly unknown[]): string {
  let json = '[';
  for (let index = 0; index < items.length; index++) {
    if (index > 0) json += ',';
    if (index in items) json += canonicalJson(items[index]);
  }
  return `${json}]`;
}

/** The record's keys in `sort()` order; sorted only when they are not in order already. */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  for (let index = 1; index < keys.length; index++) {
    if ((keys[index - 1] as string) > (keys[index] as string)) return keys.sort();
  }
  return keys;
}

/** Keys of plain characters need no escaping: quoted as they are; others as `JSON.stringify` writes them. */
const PLAIN_KEY = /^[\w$ .:/@-]*$/;

function keyJson(key: string): string {
  return PLAIN_KEY.test(key) ? `"${key}"` : JSON.stringify(key);
}

/**
 * The sha256 (hex) of the canonical JSON (UTF-8) of a call's arguments: what tells "the same call
 * again" from "the same key with other arguments". Synchronous, native on Node and pure JS in
 * browsers, with the same values as earlier versions (so fingerprints a Redis store holds still match).
 *
 * @example
 * fingerprint({ a: 1, b: 2 }) === fingerprint({ b: 2, a: 1 }); // true
 */
export function fingerprint(args: unknown): string {
  return sha256Hex(canonicalJson(args));
}

/** How long a sha256 is in hex: a local fingerprint keeps canonical JSON up to that length. */
const SHA256_HEX_LENGTH = 64;

/** Stores whose fingerprints are only compared in this process (see {@link fingerprintFor}). */
const localStores = new WeakSet<object>();

/**
 * Marks `store` as one whose fingerprints never leave this process and are compared with
 * {@link sameArguments} (the in-memory store), so that {@link fingerprintFor} may skip the hash.
 *
 * @example
 * const store = comparesFingerprintsLocally({ begin, complete, release });
 */
export function comparesFingerprintsLocally<S extends object>(store: S): S {
  localStores.add(store);
  return store;
}

/**
 * The fingerprint of `args` to give `store`: {@link fingerprint}, or, for a store whose
 * fingerprints never leave this process ({@link comparesFingerprintsLocally}), the canonical JSON
 * itself when it is no longer than a hash — no hash to work out, and never more to keep.
 *
 * @example
 * fingerprintFor(memoryIdempotencyStore(), { n: 1 }); // '{"n":1}'
 * fingerprintFor(redisStore, { n: 1 }) === fingerprint({ n: 1 }); // true
 */
export function fingerprintFor(store: object, args: unknown): string {
  if (!localStores.has(store)) return fingerprint(args);
  const json = canonicalJson(args);
  return json.length <= SHA256_HEX_LENGTH ? json : sha256Hex(json);
}

/**
 * Whether two fingerprints are of the same arguments: equal, or one the canonical JSON that
 * {@link fingerprintFor} kept and the other its {@link fingerprint}. Hashes only when they differ.
 *
 * @example
 * sameArguments('{"n":1}', fingerprint({ n: 1 })); // true
 */
export function sameArguments(held: string, given: string): boolean {
  return held === given || sha256Hex(held) === given || sha256Hex(given) === held;
}

/**
 * The store key of an idempotency key: scoped by tool, so two tools may use the same key.
 *
 * @example
 * scopedKey('charge', 'order-42'); // 'charge:order-42'
 */
export function scopedKey(tool: string, idempotencyKey: string): string {
  return `${tool}:${idempotencyKey}`;
}
