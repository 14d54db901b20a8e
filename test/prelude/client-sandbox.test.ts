/**
 * The Prelude client against a real sandbox: every endpoint, the answers parsed with their types,
 * and what the caller gives (correlation IDs, callback URLs, options) reaching Prelude as given.
 */
import {
  isEventOf,
  isNotifyMessageEvent,
  parseWebhookEvent,
  verifyWebhookSignature,
  type PreludeClient,
  type WebhookEvent,
} from '../../src/prelude';
import {
  apiKey,
  phoneTarget,
  startServer,
  startTestSandbox,
  uniqueNumber,
  type TestSandbox,
  type TestServer,
} from './support';
import { eventually } from '../support/eventually';

const suspicious = uniqueNumber();
const unsubscribed = uniqueNumber();

let t: TestSandbox;
let client: PreludeClient;
let hooks: TestServer;

beforeAll(async () => {
  t = await startTestSandbox({
    SANDBOX_SUSPICIOUS_NUMBERS: suspicious,
    SANDBOX_UNSUBSCRIBED_NUMBERS: unsubscribed,
  });
  client = t.client();
  hooks = await startServer((_request, response) => {
    response.statusCode = 200;
    response.end();
  });
});
afterAll(async () => {
  await hooks.stop();
  await t.stop();
});

/** The webhooks received so far for a verification or a message, verified and parsed. */
function eventsAbout(id: string): WebhookEvent[] {
  return hooks.received
    .filter((request) => request.raw.includes(id))
    .map((request) => {
      expect(
        verifyWebhookSignature(
          request.raw,
          request.headers['x-webhook-signature'] as string,
          t.sandbox.publicKeyPem,
        ),
      ).toEqual({ valid: true });
      return parseWebhookEvent(JSON.parse(request.raw));
    });
}

describe('Verify', () => {
  it('opens a window (success), then retries it under the same id, with typed answers', async () => {
    const target = phoneTarget();
    const created = await client.verification.create({ target });
    expect(created).toEqual({
      id: expect.stringMatching(/^vrf_[0-9a-z]{26}$/),
      status: 'success',
      method: 'message',
      channels: expect.arrayContaining(['sms']),
      request_id: expect.any(String),
    });
    expect(created.channels?.every((channel) => typeof channel === 'string')).toBe(true);

    const retried = await client.verification.create({ target });
    expect(retried).toMatchObject({ id: created.id, status: 'retry', method: 'message' });
    expect(retried.request_id).not.toBe(created.request_id);

    const messages = await t.messages(target.value);
    expect(messages).toHaveLength(2);
    expect(messages[0]?.code).toBe(messages[1]?.code);
  });

  it('checks a wrong code (failure), the right one (success), then finds the window gone', async () => {
    const target = phoneTarget();
    const created = await client.verification.create({
      target,
      metadata: { correlation_id: 'signup-42' },
    });
    const code = await t.latestCode(target.value);
    const wrong = code === '000000' ? '111111' : '000000';

    expect(await client.verification.check({ target, code: wrong })).toEqual({
      id: created.id,
      status: 'failure',
      metadata: { correlation_id: 'signup-42' },
      request_id: expect.any(String),
    });
    expect(await client.verification.check({ target, code })).toEqual({
      id: created.id,
      status: 'success',
      metadata: { correlation_id: 'signup-42' },
      request_id: expect.any(String),
    });
    const gone = await client.verification.check({ target, code });
    expect(gone).toEqual({ status: 'expired_or_not_found', request_id: expect.any(String) });
    expect(gone.id).toBeUndefined();

    // Converted: the next create opens a new window.
    const next = await client.verification.create({ target });
    expect(next).toMatchObject({ status: 'success' });
    expect(next.id).not.toBe(created.id);
  });

  it('answers expired_or_not_found for a target never verified', async () => {
    expect(await client.verification.check({ target: phoneTarget(), code: '123456' })).toMatchObject({
      status: 'expired_or_not_found',
    });
  });

  it('sends the correlation ID exactly as given, and it comes back on retries and checks', async () => {
    const target = phoneTarget();
    // The longest the API takes (80), with spaces, punctuation and non-ASCII letters.
    const correlationId = 'order #42 / ünïcødé · "quoted" & <tagged>'.padEnd(80, '~');
    const created = await client.verification.create({ target, metadata: { correlation_id: correlationId } });
    expect(created.metadata).toEqual({ correlation_id: correlationId });
    const retried = await client.verification.create({ target });
    expect(retried.metadata).toEqual({ correlation_id: correlationId });
    const checked = await client.verification.check({ target, code: await t.latestCode(target.value) });
    expect(checked).toMatchObject({ status: 'success', metadata: { correlation_id: correlationId } });
  });

  it('sends options as given: code size, voice method, e-mail targets', async () => {
    const short = phoneTarget();
    await client.verification.create({ target: short, options: { code_size: 4 } });
    expect(await t.latestCode(short.value)).toMatch(/^\d{4}$/);

    const voice = await client.verification.create({ target: phoneTarget(), options: { method: 'voice' } });
    expect(voice.method).toBe('voice');

    const email = await client.verification.create({
      target: { type: 'email_address', value: `jane.${Date.now()}@example.com` },
    });
    expect(email).toMatchObject({ status: 'success', method: 'email', channels: ['email'] });
  });

  it('answers blocked with its reason for a block-listed number: a result, not an error', async () => {
    const target = phoneTarget();
    const listed = await fetch(`${t.url}/v2/verification/management/phone-numbers/block`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ phone_number: target.value }),
    });
    expect(listed.status).toBe(200);
    const blocked = await client.verification.create({ target });
    expect(blocked).toMatchObject({ status: 'blocked', reason: 'in_block_list', id: expect.any(String) });
    expect(await t.messages(target.value)).toHaveLength(0);
  });

  it('sends the callback URL as given: the sandbox posts the window’s signed events there', async () => {
    const target = phoneTarget();
    const created = await client.verification.create({
      target,
      metadata: { correlation_id: 'with-callback' },
      options: { callback_url: `${hooks.url}/prelude?tenant=a&x=1` },
    });
    const events = await eventually(
      () => {
        const received = eventsAbout(created.id);
        const delivered = received.some(
          (event) => isEventOf(event, 'verify.delivery_status') && event.payload.status === 'delivered',
        );
        return delivered && received.length >= 4 ? received : undefined;
      },
      { description: 'the verification’s webhooks up to its delivered report' },
    );
    expect(hooks.received.some((request) => request.url === '/prelude?tenant=a&x=1')).toBe(true);
    expect(events.map((event) => event.type)).toEqual(
      expect.arrayContaining(['verify.authentication', 'verify.attempt', 'verify.delivery_status']),
    );
    for (const event of events) {
      expect(event.payload).toMatchObject({
        verification_id: created.id,
        metadata: { correlation_id: 'with-callback' },
      });
    }
    const authentication = events.find((event) => isEventOf(event, 'verify.authentication'));
    if (!authentication || !isEventOf(authentication, 'verify.authentication')) throw new Error('missing');
    expect(authentication.payload.target).toEqual(target);
    expect(authentication.payload.price).toEqual({ amount: expect.any(Number), currency: 'EUR' });
  });
});

describe('Watch', () => {
  it('predicts legitimate for an ordinary number', async () => {
    const prediction = await client.watch.predict({
      target: phoneTarget(),
      signals: { ip: '192.0.2.10', device_platform: 'ios' },
      metadata: { correlation_id: 'predict-1' },
    });
    expect(prediction).toEqual({
      id: expect.stringMatching(/^prd_/),
      prediction: 'legitimate',
      request_id: expect.any(String),
    });
  });

  it('predicts suspicious, with risk factors, for a number the sandbox flags', async () => {
    const prediction = await client.watch.predict({ target: phoneTarget(suspicious) });
    expect(prediction).toMatchObject({ prediction: 'suspicious', risk_factors: ['fraud_database'] });
  });

  it('sends feedbacks and events', async () => {
    const target = phoneTarget();
    expect(
      await client.watch.sendFeedbacks({
        feedbacks: [
          { target, type: 'verification.started', metadata: { correlation_id: 'predict-1' } },
          { target, type: 'verification.completed' },
        ],
      }),
    ).toEqual({ status: 'success', request_id: expect.any(String) });
    expect(
      await client.watch.dispatchEvents({
        events: [
          { target, label: 'account.banned', confidence: 'maximum' },
          { target, label: 'payment.chargeback', confidence: 'low' },
        ],
      }),
    ).toEqual({ status: 'success', request_id: expect.any(String) });
  });
});

describe('Notify', () => {
  it('sends one message, every field typed and echoed, the callback getting its events', async () => {
    const to = uniqueNumber();
    const sent = await client.notify.send({
      template_id: 'template_sandbox_order_shipped',
      to,
      variables: { order_id: 'A-17' },
      correlation_id: 'shipment-17',
      callback_url: `${hooks.url}/notify`,
    });
    expect(sent).toMatchObject({
      id: expect.stringMatching(/^tx_/),
      to,
      template_id: 'template_sandbox_order_shipped',
      variables: { order_id: 'A-17' },
      correlation_id: 'shipment-17',
      callback_url: `${hooks.url}/notify`,
      request_id: expect.any(String),
    });
    expect(Number.isNaN(Date.parse(sent.created_at))).toBe(false);
    expect(Date.parse(sent.expires_at)).toBeGreaterThan(Date.parse(sent.created_at));
    expect((await t.messages(to))[0]?.body).toBe('Your order A-17 has shipped.');

    const events = await eventually(
      () => {
        const received = eventsAbout(sent.id);
        return received.some((event) => event.type === 'transactional.message.delivered')
          ? received
          : undefined;
      },
      { description: 'the message’s transactional.message.delivered webhook' },
    );
    for (const event of events) {
      expect(isNotifyMessageEvent(event)).toBe(true);
      expect(event.payload).toMatchObject({ correlation_id: 'shipment-17' });
    }
  });

  it('sends a batch: one result per recipient, in order, a refused recipient failing alone', async () => {
    const first = uniqueNumber();
    const batch = await client.notify.sendBatch({
      template_id: 'template_sandbox_promo',
      to: [first, unsubscribed],
      variables: { discount: '10%' },
    });
    expect(batch).toMatchObject({ total_count: 2, success_count: 1, error_count: 1 });
    expect(batch.results).toEqual([
      {
        phone_number: first,
        success: true,
        message: expect.objectContaining({ id: expect.stringMatching(/^tx_/) }),
      },
      {
        phone_number: unsubscribed,
        success: false,
        error: expect.objectContaining({ code: 'unsubscribed' }),
      },
    ]);
    expect(await t.messages(unsubscribed)).toHaveLength(0);
  });
});
