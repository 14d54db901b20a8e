/**
 * Webhook signatures and events as the service receives them, and target normalisation.
 */
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import {
  isEventOf,
  isNotifyMessageEvent,
  normalizeTarget,
  parseWebhookEvent,
  PreludeError,
  verifyWebhookSignature,
  WebhookEventError,
} from '../../src/prelude';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });

const body = JSON.stringify({
  id: 'evt_01jnh4zwabf1grfsaq955ej3mt',
  type: 'verify.delivery_status',
  created_at: '2026-11-22T10:00:00Z',
  payload: {
    id: 'dls_1mzny4yepa9berf8hemgys2391',
    attempt_id: 'att_3v9s0v9gzt8hws0cp753q4gj0c',
    verification_id: 'vrf_01jc0t6fwwfgfsq1md24mhyztj',
    status: 'delivered',
    time: '2026-11-22T10:00:00Z',
    metadata: { correlation_id: 'verification-+33612345678' },
  },
});

function signed(payload: string, options: { saltLength?: number; key?: typeof privateKey } = {}): Buffer {
  return sign('sha256', Buffer.from(payload), {
    key: options.key ?? privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: options.saltLength ?? 32,
  });
}

const header = (signature: string) => `rsassa-pss-sha256=${signature}`;

describe('webhook signatures', () => {
  it('accepts Prelude’s signature in standard, URL-safe and unpadded base64', () => {
    const signature = signed(body);
    for (const encoded of [
      signature.toString('base64'),
      signature.toString('base64url'),
      signature.toString('base64').replace(/=+$/, ''),
    ]) {
      expect(verifyWebhookSignature(body, header(encoded), publicKeyPem)).toEqual({ valid: true });
    }
  });

  it('detects the salt length (32 bytes, or the maximum)', () => {
    const maxSalt = signed(body, { saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN });
    expect(verifyWebhookSignature(body, header(maxSalt.toString('base64')), publicKeyPem).valid).toBe(true);
    expect(
      verifyWebhookSignature(Buffer.from(body), header(signed(body).toString('base64')), publicKey).valid,
    ).toBe(true);
  });

  it('rejects a changed byte, another key, and missing or malformed headers, each with a reason', () => {
    const good = header(signed(body).toString('base64'));
    const tampered = body.replace('delivered', 'delivereD');
    expect(verifyWebhookSignature(tampered, good, publicKeyPem)).toEqual({
      valid: false,
      reason: 'bad_signature',
    });
    const foreign = header(signed(body, { key: other.privateKey }).toString('base64'));
    expect(verifyWebhookSignature(body, foreign, publicKeyPem)).toEqual({
      valid: false,
      reason: 'bad_signature',
    });
    expect(verifyWebhookSignature(body, undefined, publicKeyPem)).toEqual({
      valid: false,
      reason: 'missing_header',
    });
    expect(verifyWebhookSignature(body, '', publicKeyPem)).toEqual({
      valid: false,
      reason: 'missing_header',
    });
    for (const malformed of [
      signed(body).toString('base64'), // no scheme
      `rsassa-pss-sha512=${signed(body).toString('base64')}`,
      'rsassa-pss-sha256=',
      'rsassa-pss-sha256=!!not base64!!',
    ]) {
      expect(verifyWebhookSignature(body, malformed, publicKeyPem)).toEqual({
        valid: false,
        reason: 'malformed_header',
      });
    }
    expect(verifyWebhookSignature(body, header('AAAA'), publicKeyPem)).toEqual({
      valid: false,
      reason: 'bad_signature',
    });
  });

  it('throws on a key that is not a public key: a configuration error, not a bad request', () => {
    expect(() => verifyWebhookSignature(body, header('AAAA'), 'not a key')).toThrow();
  });
});

describe('webhook events', () => {
  it('parses each known event type with its payload', () => {
    const event = parseWebhookEvent(JSON.parse(body));
    expect(isEventOf(event, 'verify.delivery_status')).toBe(true);
    if (isEventOf(event, 'verify.delivery_status')) {
      expect(event.payload.metadata?.correlation_id).toBe('verification-+33612345678');
    }
    const attempt = parseWebhookEvent({
      id: 'evt_2',
      type: 'verify.attempt',
      created_at: 'now',
      payload: {
        id: 'att_1',
        verification_id: 'vrf_1',
        time: 'now',
        delivery_status: 'submitted',
        target: { type: 'phone_number', value: '+33612345678' },
      },
    });
    expect(isEventOf(attempt, 'verify.attempt')).toBe(true);
    const message = parseWebhookEvent({
      id: 'evt_3',
      type: 'transactional.message.delivered',
      created_at: 'now',
      payload: { message_id: 'tx_1', correlation_id: 'notification-1', status: 'delivered' },
    });
    expect(isNotifyMessageEvent(message)).toBe(true);
  });

  it('keeps an event type it does not know, and unknown fields and statuses', () => {
    const future = parseWebhookEvent({
      id: 'evt_4',
      type: 'verify.something_new',
      created_at: 'now',
      payload: { x: 1 },
    });
    expect(future).toMatchObject({ type: 'verify.something_new', payload: { x: 1 } });
    const status = parseWebhookEvent({
      ...JSON.parse(body),
      payload: { ...JSON.parse(body).payload, status: 'teleported', extra: true },
    });
    expect(status.payload).toMatchObject({ status: 'teleported', extra: true });
  });

  it('refuses a body that is not an event, or a known type without its payload', () => {
    expect(() => parseWebhookEvent({ hello: 'world' })).toThrow(WebhookEventError);
    expect(() => parseWebhookEvent('a string')).toThrow(WebhookEventError);
    expect(() =>
      parseWebhookEvent({ id: 'evt_5', type: 'verify.delivery_status', created_at: 'now', payload: {} }),
    ).toThrow(/verify\.delivery_status/);
  });
});

describe('target normalisation', () => {
  it('strips phone formatting to E.164 and lower-cases e-mail addresses', () => {
    expect(normalizeTarget({ type: 'phone_number', value: '+33 6 12-34.56 (78)' })).toEqual({
      type: 'phone_number',
      value: '+33612345678',
    });
    expect(normalizeTarget({ type: 'email_address', value: '  Jane.Doe@Example.COM ' })).toEqual({
      type: 'email_address',
      value: 'jane.doe@example.com',
    });
  });

  it('refuses what is not a phone number or an e-mail address, with a typed error', () => {
    for (const value of ['0612345678', '+0612345678', '+33 6 12 34 56 78 90 12 34 56', 'call me']) {
      expect(() => normalizeTarget({ type: 'phone_number', value })).toThrow(PreludeError);
    }
    expect(() => normalizeTarget({ type: 'email_address', value: 'jane@' })).toThrow(
      expect.objectContaining({ code: 'invalid_email_address', kind: 'invalid_request' }),
    );
  });
});
