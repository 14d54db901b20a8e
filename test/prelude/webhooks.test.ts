/**
 * Webhook signatures (RSASSA-PSS SHA-256 over the raw body) with a key pair made here and with
 * real deliveries from the sandbox, and the events parsed from them.
 */
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  isEventOf,
  isNotifyMessageEvent,
  parseWebhookEvent,
  verifyWebhookSignature,
  WebhookEventError,
} from '../../src/prelude';
import { eventually } from '../support/eventually';
import { phoneTarget, startServer, startTestSandbox, type ReceivedRequest } from './support';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });

const body = JSON.stringify({
  id: 'evt_01jnh4zwabf1grfsaq955ej3mt',
  type: 'verify.delivery_status',
  created_at: '2026-11-22T10:00:00.067887456Z',
  payload: {
    id: 'dls_1mzny4yepa9berf8hemgys2391',
    attempt_id: 'att_3v9s0v9gzt8hws0cp753q4gj0c',
    verification_id: 'vrf_01jc0t6fwwfgfsq1md24mhyztj',
    target: { type: 'phone_number', value: '+33612345678' },
    status: 'delivered',
    time: '2026-11-22T10:00:00Z',
    price: { amount: 0.009, currency: 'EUR' },
    carrier_information: { mcc: '208', mnc: '10' },
    metadata: { correlation_id: 'signup-ü-42' },
  },
});

function signature(payload: string | Buffer, options: { saltLength?: number; key?: KeyObject } = {}): Buffer {
  return sign('sha256', Buffer.from(payload), {
    key: options.key ?? privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: options.saltLength ?? 32,
  });
}
const header = (encoded: string) => `rsassa-pss-sha256=${encoded}`;
const good = header(signature(body).toString('base64'));

/** The same signature in every base64 spelling Prelude's docs allow. */
function spellings(signed: Buffer): Record<string, string> {
  return {
    standard: signed.toString('base64'),
    'URL-safe': signed.toString('base64url'),
    'URL-safe padded': signed.toString('base64').replace(/\+/g, '-').replace(/\//g, '_'),
    unpadded: signed.toString('base64').replace(/=+$/, ''),
  };
}

describe('signatures with a key pair made in the test', () => {
  it.each([
    ['32', 32],
    ['the maximum', constants.RSA_PSS_SALTLEN_MAX_SIGN],
    ['the digest length (auto)', constants.RSA_PSS_SALTLEN_DIGEST],
  ])('accepts a signature with salt length %s, in every base64 spelling', (_name, saltLength) => {
    const signed = signature(body, { saltLength });
    for (const [spelling, encoded] of Object.entries(spellings(signed))) {
      expect([spelling, verifyWebhookSignature(body, header(encoded), publicKeyPem)]).toEqual([
        spelling,
        { valid: true },
      ]);
    }
  });

  it('takes the body as a string or as the received bytes, and the key as PEM or a KeyObject', () => {
    expect(verifyWebhookSignature(Buffer.from(body), good, publicKeyPem)).toEqual({ valid: true });
    expect(verifyWebhookSignature(body, good, publicKey)).toEqual({ valid: true });
    expect(verifyWebhookSignature(body, `  ${good}\n`, publicKeyPem)).toEqual({ valid: true });
  });

  it('rejects a body with one byte changed', () => {
    const bytes = Buffer.from(body);
    for (const at of [0, bytes.indexOf('delivered'), bytes.length - 1]) {
      const changed = Buffer.from(bytes);
      changed[at] = changed[at]! ^ 0x01;
      expect(verifyWebhookSignature(changed, good, publicKeyPem)).toEqual({
        valid: false,
        reason: 'bad_signature',
      });
    }
    // The same JSON re-serialised is other bytes: only the received bytes verify.
    const reserialised = JSON.stringify(JSON.parse(body), null, 1);
    expect(verifyWebhookSignature(reserialised, good, publicKeyPem).valid).toBe(false);
  });

  it('rejects a signature by another key, a PKCS#1 v1.5 one, and one of another body', () => {
    const cases = [
      header(signature(body, { key: stranger.privateKey }).toString('base64')),
      header(sign('sha256', Buffer.from(body), privateKey).toString('base64')),
      header(signature(`${body} `).toString('base64')),
      header(Buffer.alloc(256).toString('base64')),
      header(Buffer.alloc(512, 7).toString('base64')),
      header('AAAA'),
    ];
    for (const signed of cases) {
      expect(verifyWebhookSignature(body, signed, publicKeyPem)).toEqual({
        valid: false,
        reason: 'bad_signature',
      });
    }
    expect(
      verifyWebhookSignature(
        body,
        good,
        stranger.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      ),
    ).toEqual({ valid: false, reason: 'bad_signature' });
  });

  it('rejects a missing or empty header', () => {
    for (const missing of [undefined, '']) {
      expect(verifyWebhookSignature(body, missing, publicKeyPem)).toEqual({
        valid: false,
        reason: 'missing_header',
      });
    }
  });

  it('rejects a header without the rsassa-pss-sha256= prefix, or with garbage after it', () => {
    const bare = signature(body).toString('base64');
    for (const malformed of [
      bare,
      `sha256=${bare}`,
      `rsassa-pss-sha512=${bare}`,
      `RSASSA-PSS-SHA256=${bare}`,
      `rsassa-pss-sha256 ${bare}`,
      `rsassa-pss-sha256=`,
      `rsassa-pss-sha256= ${bare}`,
      'rsassa-pss-sha256=!!not base64!!',
      'rsassa-pss-sha256=====',
      `rsassa-pss-sha256=${bare},rsassa-pss-sha256=${bare}`,
      '   ',
    ]) {
      expect([malformed, verifyWebhookSignature(body, malformed, publicKeyPem)]).toEqual([
        malformed,
        { valid: false, reason: 'malformed_header' },
      ]);
    }
  });

  it('throws on a configured key that is not a key: a setup error, not a bad request', () => {
    // Node's key decoder refuses it (OpenSSL's code, e.g. ERR_OSSL_UNSUPPORTED).
    expect(() => verifyWebhookSignature(body, good, 'not a PEM key')).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^ERR_OSSL_/) }),
    );
  });
});

describe('signatures of real deliveries from the sandbox', () => {
  let delivered: ReceivedRequest[];
  let sandboxKey: string;

  beforeAll(async () => {
    const hooks = await startServer((_request, response) => {
      response.statusCode = 200;
      response.end();
    });
    const t = await startTestSandbox();
    try {
      sandboxKey = t.sandbox.publicKeyPem;
      const client = t.client();
      const target = phoneTarget();
      await client.verification.create({ target, options: { callback_url: hooks.url } });
      await client.notify.send({
        template_id: 'template_sandbox_verified',
        to: target.value,
        callback_url: hooks.url,
      });
      // Verify: authentication, attempt, submitted, delivered; Notify: created, delivered.
      delivered = await eventually(() => hooks.received.length >= 6 && [...hooks.received], {
        description: 'the 6 webhooks of a verification and a message',
      });
    } finally {
      await t.stop();
      await hooks.stop();
    }
  });

  it('verify with the sandbox’s public key, in every base64 spelling', () => {
    for (const request of delivered) {
      const received = request.headers['x-webhook-signature'] as string;
      expect(verifyWebhookSignature(request.raw, received, sandboxKey)).toEqual({ valid: true });
      const signed = Buffer.from(received.replace('rsassa-pss-sha256=', ''), 'base64');
      for (const encoded of Object.values(spellings(signed))) {
        expect(verifyWebhookSignature(request.raw, header(encoded), sandboxKey)).toEqual({ valid: true });
      }
    }
  });

  it('fail with another key, or with one byte of the body changed', () => {
    for (const request of delivered) {
      const received = request.headers['x-webhook-signature'] as string;
      expect(verifyWebhookSignature(request.raw, received, publicKeyPem).valid).toBe(false);
      const changed = Buffer.from(request.raw);
      changed[10] = changed[10]! ^ 0x20;
      expect(verifyWebhookSignature(changed, received, sandboxKey)).toEqual({
        valid: false,
        reason: 'bad_signature',
      });
    }
  });

  it('parse into the events they are', () => {
    const types = delivered.map((request) => parseWebhookEvent(JSON.parse(request.raw)).type);
    expect(types).toEqual(
      expect.arrayContaining([
        'verify.authentication',
        'verify.attempt',
        'verify.delivery_status',
        'transactional.message.created',
      ]),
    );
  });
});

describe('parseWebhookEvent', () => {
  const envelope = (type: string, payload: unknown) => ({
    id: 'evt_01jnh4zwabf1grfsaq955ej3mt',
    type,
    payload,
    created_at: '2026-11-22T10:00:00Z',
  });
  const target = { type: 'phone_number', value: '+33612345678' };

  it('verify.authentication, with its price and correlation ID', () => {
    const event = parseWebhookEvent(
      envelope('verify.authentication', {
        verification_id: 'vrf_1',
        target,
        price: { amount: 0.009, currency: 'EUR' },
        time: '2026-11-22T10:00:00Z',
        metadata: { correlation_id: 'c-1' },
      }),
    );
    expect(isEventOf(event, 'verify.authentication')).toBe(true);
    expect(isEventOf(event, 'verify.attempt')).toBe(false);
    expect(isNotifyMessageEvent(event)).toBe(false);
    if (!isEventOf(event, 'verify.authentication')) throw new Error('not narrowed');
    expect(event.payload.verification_id).toBe('vrf_1');
    expect(event.payload.price).toEqual({ amount: 0.009, currency: 'EUR' });
    expect(event.payload.metadata?.correlation_id).toBe('c-1');
  });

  it('verify.attempt, keeping an unknown delivery status and new fields', () => {
    const event = parseWebhookEvent(
      envelope('verify.attempt', {
        id: 'att_1',
        verification_id: 'vrf_1',
        target,
        time: '2026-11-22T10:00:00Z',
        delivery_status: 'read_by_owl',
        channel: 'whatsapp',
        trigger: 'auto_retry',
      }),
    );
    if (!isEventOf(event, 'verify.attempt')) throw new Error('not narrowed');
    expect(event.payload).toMatchObject({
      id: 'att_1',
      delivery_status: 'read_by_owl',
      trigger: 'auto_retry',
    });
  });

  it('verify.delivery_status', () => {
    const event = parseWebhookEvent(JSON.parse(body));
    if (!isEventOf(event, 'verify.delivery_status')) throw new Error('not narrowed');
    expect(event.payload).toMatchObject({
      attempt_id: 'att_3v9s0v9gzt8hws0cp753q4gj0c',
      status: 'delivered',
    });
    expect(event.payload.metadata?.correlation_id).toBe('signup-ü-42');
  });

  it.each([
    [
      'created',
      { id: 'tx_1', to: '+33612345678', correlation_id: 'n-1', fee: { amount: '0.009', currency: 'EUR' } },
    ],
    ['submitted', { message_id: 'tx_1', attempt_id: 'att_1', type: 'transactional', channel: 'sms' }],
    ['pending_delivery', { id: 'tx_1' }],
    ['delivered', { id: 'tx_1', status: 'delivered' }],
    ['failed', { id: 'tx_1', status: 'failed', reason: 'unknown_recipient' }],
    ['unknown', { id: 'tx_1', status: 'expired', reason: 'network' }],
    ['a_type_from_2030', { id: 'tx_1' }],
  ])('transactional.message.%s', (suffix, payload) => {
    const event = parseWebhookEvent(envelope(`transactional.message.${suffix}`, payload));
    expect(isNotifyMessageEvent(event)).toBe(true);
    expect(event).toMatchObject({ type: `transactional.message.${suffix}`, payload });
  });

  it('keeps an event type it does not know as a generic event', () => {
    for (const type of [
      'verify.something_new',
      'marketing.subscription.carrier_disconnect',
      'billing.low_balance',
    ]) {
      const event = parseWebhookEvent(envelope(type, { anything: [1, 2], nested: { a: null } }));
      expect(event).toEqual(envelope(type, { anything: [1, 2], nested: { a: null } }));
      expect(isNotifyMessageEvent(event)).toBe(false);
    }
  });

  it('refuses a malformed envelope with a WebhookEventError', () => {
    for (const malformed of [
      null,
      42,
      'a string',
      [],
      {},
      { hello: 'world' },
      { ...envelope('verify.attempt', {}), id: undefined },
      { ...envelope('verify.attempt', {}), id: '' },
      { ...envelope('verify.attempt', {}), type: undefined },
      { ...envelope('x.y', {}), type: '' },
      { ...envelope('x.y', {}), created_at: undefined },
      envelope('x.y', null),
      envelope('x.y', []),
      envelope('x.y', 'payload'),
    ]) {
      expect(() => parseWebhookEvent(malformed)).toThrow(WebhookEventError);
    }
  });

  it('refuses a known type without its documented payload, naming the type and the field', () => {
    const cases: [string, unknown, RegExp][] = [
      ['verify.authentication', { target, time: 't' }, /verify\.authentication: payload\.verification_id/],
      [
        'verify.attempt',
        { id: 'att_1', verification_id: 'vrf_1', time: 't' },
        /verify\.attempt: payload\.target/,
      ],
      [
        'verify.delivery_status',
        { id: 'dls_1', verification_id: 'vrf_1', time: 't', status: 'x' },
        /attempt_id/,
      ],
      ['verify.delivery_status', {}, /verify\.delivery_status/],
      ['transactional.message.delivered', { status: 42 }, /payload\.status/],
    ];
    for (const [type, payload, message] of cases) {
      let error: unknown;
      try {
        parseWebhookEvent(envelope(type, payload));
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(WebhookEventError);
      expect((error as Error).message).toMatch(message);
    }
  });
});
