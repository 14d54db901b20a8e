import { randomBytes, randomUUID } from 'node:crypto';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

/** An ID shaped like Prelude's: a prefix and 26 lower-case base32 characters (`vrf_01jc0t6f…`). */
export function newId(prefix: string): string {
  const bytes = randomBytes(26);
  let id = '';
  for (const byte of bytes) id += alphabet[byte & 31];
  return `${prefix}_${id}`;
}

/** A request ID, as Prelude puts on every answer. */
export function newRequestId(): string {
  return randomUUID();
}
