/**
 * The sandbox's Watch and Notify rules (24–29), over HTTP.
 */
import { phoneTarget, startTestSandbox, type TestSandbox } from './support';

const suspicious = '+33699990001';
const unsubscribed = '+33699990002';

describe('sandbox Watch', () => {
  let t: TestSandbox;
  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_SUSPICIOUS_NUMBERS: suspicious });
  });
  afterAll(() => t.stop());

  it('24. predicts legitimate, or suspicious with risk factors for a listed number', async () => {
    const legit = await t.call('POST', '/v2/watch/predict', { target: phoneTarget() });
    expect(legit.body).toEqual({
      id: expect.stringMatching(/^prd_/),
      prediction: 'legitimate',
      request_id: expect.any(String),
    });
    const bad = await t.call('POST', '/v2/watch/predict', { target: phoneTarget(suspicious) });
    expect(bad.body).toMatchObject({ prediction: 'suspicious', risk_factors: expect.any(Array) });
    expect(
      (await t.call('POST', '/v2/watch/predict', { target: { type: 'phone_number', value: 'x' } })).status,
    ).toBe(400);
  });

  it('25. takes 1 to 100 feedbacks of the two known types', async () => {
    const target = phoneTarget();
    const one = await t.call('POST', '/v2/watch/feedback', {
      feedbacks: [{ target, type: 'verification.started' }],
    });
    expect(one.body).toEqual({ status: 'success', request_id: expect.any(String) });
    const many = Array.from({ length: 101 }, () => ({ target, type: 'verification.completed' }));
    expect((await t.call('POST', '/v2/watch/feedback', { feedbacks: many })).status).toBe(400);
    expect((await t.call('POST', '/v2/watch/feedback', { feedbacks: [] })).status).toBe(400);
    expect(
      (await t.call('POST', '/v2/watch/feedback', { feedbacks: [{ target, type: 'verification.guessed' }] }))
        .status,
    ).toBe(400);
  });

  it('26. takes 1 to 100 events with a known confidence and a label', async () => {
    const target = phoneTarget();
    const ok = await t.call('POST', '/v2/watch/event', {
      events: [{ target, confidence: 'low', label: 'login' }],
    });
    expect(ok.body.status).toBe('success');
    expect(
      (await t.call('POST', '/v2/watch/event', { events: [{ target, confidence: 'sure', label: 'login' }] }))
        .status,
    ).toBe(400);
    expect(
      (await t.call('POST', '/v2/watch/event', { events: [{ target, confidence: 'low', label: '' }] }))
        .status,
    ).toBe(400);
  });
});

describe('sandbox Notify', () => {
  let t: TestSandbox;
  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_UNSUBSCRIBED_NUMBERS: unsubscribed });
  });
  afterAll(() => t.stop());

  const send = (body: Record<string, unknown>) =>
    t.call('POST', '/v2/notify', {
      template_id: 'template_sandbox_verified',
      to: phoneTarget().value,
      ...body,
    });
  const inHours = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();

  it('27. sends a templated message with Prelude’s answer and puts it in the inbox', async () => {
    const to = phoneTarget().value;
    const sent = await send({
      to,
      template_id: 'template_sandbox_order_shipped',
      variables: { order_id: 'N-9' },
      correlation_id: 'notify-27',
    });
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({
      id: expect.stringMatching(/^tx_/),
      to,
      template_id: 'template_sandbox_order_shipped',
      variables: { order_id: 'N-9' },
      created_at: expect.any(String),
      expires_at: expect.any(String),
      correlation_id: 'notify-27',
    });
    expect((await t.latestMessage(to))?.body).toBe('Your order N-9 has shipped.');
  });

  it('27. refuses unknown templates, wrong variables and bad times with their codes', async () => {
    const codeOf = async (body: Record<string, unknown>) => (await send(body)).body.code;
    expect(await codeOf({ template_id: 'template_nope' })).toBe('template_not_found');
    expect(await codeOf({ template_id: 'template_sandbox_order_shipped' })).toBe(
      'invalid_template_variables',
    );
    expect(await codeOf({ variables: { unexpected: 'x' } })).toBe('invalid_template_variables');
    expect(await codeOf({ expires_at: inHours(-1) })).toBe('expires_at_in_past');
    expect(await codeOf({ expires_at: inHours(48) })).toBe('expires_at_too_far_in_future');
    expect((await send({ schedule_at: inHours(-1) })).status).toBe(400);
    expect((await send({ to: '0612' })).status).toBe(400);
  });

  it('28. refuses marketing to an unsubscribed number, not transactional messages', async () => {
    const promo = await send({
      to: unsubscribed,
      template_id: 'template_sandbox_promo',
      variables: { discount: '10%' },
    });
    expect(promo.body.code).toBe('unsubscribed');
    expect((await send({ to: unsubscribed })).status).toBe(200);
  });

  it('29. sends a batch with one result per recipient, in order', async () => {
    const [a, b] = [phoneTarget().value, phoneTarget().value];
    const batch = await t.call('POST', '/v2/notify/batch', {
      template_id: 'template_sandbox_verified',
      to: [a, 'bogus', b],
    });
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({ total_count: 3, success_count: 2, error_count: 1 });
    const [first, second, third] = batch.body.results;
    expect(first).toMatchObject({
      phone_number: a,
      success: true,
      message: { id: expect.stringMatching(/^tx_/) },
    });
    expect(first.error).toBeUndefined();
    expect(second).toMatchObject({
      phone_number: 'bogus',
      success: false,
      error: { code: expect.any(String) },
    });
    expect(second.message).toBeUndefined();
    expect(third).toMatchObject({ phone_number: b, success: true });
  });

  it('29. refuses an empty batch and one over 1000 recipients', async () => {
    const batch = (to: string[]) =>
      t.call('POST', '/v2/notify/batch', { template_id: 'template_sandbox_verified', to });
    expect((await batch([])).body.code).toBe('empty_batch');
    const tooMany = Array.from({ length: 1001 }, (_, i) => `+3361${String(i).padStart(7, '0')}`);
    expect((await batch(tooMany)).body.code).toBe('batch_size_exceeded');
  });
});
