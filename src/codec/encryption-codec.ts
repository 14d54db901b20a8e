import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { failureConverterPath } from './failure-converter';
import type { KeyRing } from './key-ring';

const ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : undefined);

/** A payload that could not be decrypted; names the key ID, never the key. */
export class DecryptionError extends Error {
  override readonly name = 'DecryptionError';
}

/**
 * AES-256-GCM over whole payloads (metadata and data), so Temporal's history holds neither the
 * codes, phone numbers and e-mail addresses nor even their encoding. Each payload gets a fresh
 * IV; the key ID goes in clear in the metadata so keys can rotate.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly ring: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.ring.keys[this.ring.currentKeyId]!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: utf8(ENCODING), [KEY_ID]: utf8(this.ring.currentKeyId) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.encoding) !== ENCODING) return payload;
      const keyId = text(payload.metadata?.[KEY_ID]) ?? '';
      const key = this.ring.keys[keyId];
      if (!key) throw new DecryptionError(`payload encrypted with unknown key ID "${keyId}"`);
      const sealed = Buffer.from(payload.data ?? []);
      if (sealed.length < IV_BYTES + TAG_BYTES) throw new DecryptionError('encrypted payload is truncated');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        const plain = Buffer.concat([
          decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
          decipher.final(),
        ]);
        return temporal.api.common.v1.Payload.decode(plain) as Payload;
      } catch {
        throw new DecryptionError(`payload encrypted with key "${keyId}" failed authentication`);
      }
    });
  }
}

/**
 * The data converter the worker and every client use: payloads encrypted with the key ring, and
 * failure messages and stack traces encoded as payloads so they are encrypted too. Without a key ring
 * (only in `PRIVACY_MODE=plaintext`) payloads stay in clear.
 */
export function dataConverterFor(ring: KeyRing | undefined): DataConverter {
  return { failureConverterPath, ...(ring ? { payloadCodecs: [new EncryptionCodec(ring)] } : {}) };
}
