import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { DecryptionError, EncryptionCodec, KeyRingError, parseKeyRing } from '../../src/codec';

const key = () => randomBytes(32).toString('base64');

describe('EncryptionCodec', () => {
  const k1 = key();
  const codec = new EncryptionCodec(parseKeyRing(`k1:${k1}`));
  const payload = defaultPayloadConverter.toPayload({ to: '+33612345678', code: '482913' });

  it('round-trips a payload and leaves no clear text in the encoded one', async () => {
    const [encoded] = await codec.encode([payload]);
    expect(Buffer.from(encoded!.data!).toString('latin1')).not.toContain('+33612345678');
    expect(Buffer.from(encoded!.metadata!['encryption-key-id']!).toString()).toBe('k1');
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ to: '+33612345678', code: '482913' });
  });

  it('uses a fresh IV: the same payload encrypts differently each time', async () => {
    const [a] = await codec.encode([payload]);
    const [b] = await codec.encode([payload]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  it('refuses a tampered payload and an unknown key ID, naming no key', async () => {
    const [encoded] = await codec.encode([payload]);
    const tampered = Buffer.from(encoded!.data!);
    tampered[20] = tampered[20]! ^ 1;
    await expect(codec.decode([{ ...encoded, data: tampered }])).rejects.toThrow(DecryptionError);
    const other = new EncryptionCodec(parseKeyRing(`k9:${key()}`));
    const error = await other.decode([encoded!]).catch((e: Error) => e);
    expect(error).toBeInstanceOf(DecryptionError);
    expect((error as Error).message).toContain('unknown key ID "k1"');
    expect((error as Error).message).not.toContain(k1);
  });

  it('decodes payloads of a rotated-out key and passes unencrypted payloads through', async () => {
    const [old] = await codec.encode([payload]);
    const rotated = new EncryptionCodec(parseKeyRing(`k2:${key()},k1:${k1}`));
    const [decoded] = await rotated.decode([old!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ to: '+33612345678', code: '482913' });
    const [fresh] = await rotated.encode([payload]);
    expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('k2');
    await expect(rotated.decode([payload])).resolves.toEqual([payload]);
  });

  it('explains a bad key ring without echoing key material', () => {
    expect(() => parseKeyRing('')).toThrow(KeyRingError);
    expect(() => parseKeyRing('k1:c2hvcnQ=')).toThrow('key k1: must be 32 bytes (AES-256), got 5');
    expect(() => parseKeyRing('k1:not base64!')).toThrow('key k1: not base64');
    expect(() => parseKeyRing(`${key()}`)).toThrow(/expected keyId:base64key/);
  });
});
