/** Encryption keys, by ID: the current one encrypts, any of them decrypts (key rotation). */
export interface KeyRing {
  currentKeyId: string;
  keys: Record<string, Buffer>;
}

/** Thrown for a key ring specification that cannot be used; never contains key material. */
export class KeyRingError extends Error {
  override readonly name = 'KeyRingError';
}

/**
 * Parses `keyId:base64key[,keyId:base64key…]` — the first key is the current one. Each key is 32
 * bytes (AES-256). Make one with
 * `node -e "console.log('k1:'+require('crypto').randomBytes(32).toString('base64'))"`.
 */
export function parseKeyRing(spec: string): KeyRing {
  const entries = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0)
    throw new KeyRingError('no key given: expected keyId:base64key[,keyId:base64key…]');
  const keys: Record<string, Buffer> = {};
  for (const [index, entry] of entries.entries()) {
    const at = entry.indexOf(':');
    const id = entry.slice(0, at);
    const material = entry.slice(at + 1);
    if (at <= 0 || !/^[\w.-]{1,64}$/.test(id)) {
      throw new KeyRingError(
        `key ${index + 1}: expected keyId:base64key with an ID of letters, digits, _ . -`,
      );
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(material)) throw new KeyRingError(`key ${id}: not base64`);
    const key = Buffer.from(material, 'base64');
    if (key.length !== 32) throw new KeyRingError(`key ${id}: must be 32 bytes (AES-256), got ${key.length}`);
    if (keys[id]) throw new KeyRingError(`key ${id}: given twice`);
    keys[id] = key;
  }
  return { currentKeyId: entries[0]!.slice(0, entries[0]!.indexOf(':')), keys };
}
