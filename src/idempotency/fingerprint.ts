import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every depth (arrays keep their order), so that equal arguments
 * give equal text whatever order their keys were written in.
 *
 * @example
 * canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }); // '{"a":[2,{"c":4,"d":3}],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
    const source = item as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(source)
        .sort()
        .map((key) => [key, source[key]]),
    );
  });
}

/**
 * The sha256 (hex) of the canonical JSON of a call's arguments: what tells "the same call again"
 * from "the same key with other arguments".
 *
 * @example
 * fingerprint({ a: 1, b: 2 }) === fingerprint({ b: 2, a: 1 }); // true
 */
export function fingerprint(args: unknown): string {
  return createHash('sha256').update(canonicalJson(args)).digest('hex');
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
