/**
 * Prelude's own TypeScript SDK, pointed at the sandbox, works unchanged: the proof that the sandbox
 * speaks Prelude's wire format (paths, bodies, answers, error statuses).
 */
import Prelude from '@prelude.so/sdk';
import { phoneTarget, startTestSandbox, type TestSandbox } from './support';

describe('the official @prelude.so/sdk against the sandbox', () => {
  let t: TestSandbox;
  let prelude: Prelude;

  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_MAX_CHECKS: '3' });
    prelude = new Prelude({ apiToken: 'sdk-token', baseURL: t.url, maxRetries: 0 });
  });
  afterAll(() => t.stop());
  // Cooldowns and API keys a test turns are put back whether it passed or not.
  afterEach(() => t.reset());

  it('creates, retries and checks a verification', async () => {
    const target = phoneTarget();
    const created = await prelude.verification.create({ target, metadata: { correlation_id: 'sdk-1' } });
    expect(created).toMatchObject({
      status: 'success',
      method: 'message',
      metadata: { correlation_id: 'sdk-1' },
    });
    expect(created.id).toMatch(/^vrf_/);

    const retried = await prelude.verification.create({ target });
    expect(retried).toMatchObject({ id: created.id, status: 'retry' });

    const wrong = await prelude.verification.check({ target, code: '000000' });
    expect(wrong.status).toBe('failure');
    const code = (await t.latestMessage(target.value))!.code!;
    const right = await prelude.verification.check({ target, code });
    expect(right).toMatchObject({ status: 'success', id: created.id });
  });

  it('sees lifecycle refusals as the SDK’s typed errors', async () => {
    await t.configure({ minRetryDelaySeconds: 30 });
    const target = phoneTarget();
    await prelude.verification.create({ target });
    const refused = await prelude.verification.create({ target }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Prelude.RateLimitError);
    expect(refused).toMatchObject({ status: 429, error: { code: 'premature_retry' } });
    await t.configure({ minRetryDelaySeconds: 0 });

    const badKey = new Prelude({ apiToken: 'x', baseURL: t.url, maxRetries: 0 });
    await t.configure({ apiKey: 'only-this' });
    await expect(badKey.verification.create({ target: phoneTarget() })).rejects.toBeInstanceOf(
      Prelude.AuthenticationError,
    );
    await t.configure({ apiKey: null });

    await expect(
      prelude.verification.create({ target: { type: 'phone_number', value: '12' } }),
    ).rejects.toBeInstanceOf(Prelude.BadRequestError);
  });

  it('predicts, sends feedback and sends events', async () => {
    const target = phoneTarget();
    const prediction = await prelude.watch.predict({ target, signals: { ip: '192.0.2.1' } });
    expect(prediction).toMatchObject({ prediction: 'legitimate', id: expect.stringMatching(/^prd_/) });

    const feedback = await prelude.watch.sendFeedbacks({
      feedbacks: [
        { target, type: 'verification.started' },
        { target, type: 'verification.completed' },
      ],
    });
    expect(feedback.status).toBe('success');

    const events = await prelude.watch.sendEvents({
      events: [{ target, confidence: 'high', label: 'onboarding.start' }],
    });
    expect(events.status).toBe('success');
  });

  it('sends a Notify message and a batch', async () => {
    const to = phoneTarget().value;
    const sent = await prelude.notify.send({
      template_id: 'template_sandbox_order_shipped',
      to,
      variables: { order_id: 'SDK-7' },
    });
    expect(sent).toMatchObject({
      to,
      template_id: 'template_sandbox_order_shipped',
      id: expect.stringMatching(/^tx_/),
    });
    expect((await t.latestMessage(to))?.body).toContain('SDK-7');

    const batch = await prelude.notify.sendBatch({
      template_id: 'template_sandbox_verified',
      to: [phoneTarget().value, 'not-a-number', phoneTarget().value],
    });
    expect(batch).toMatchObject({ total_count: 3, success_count: 2, error_count: 1 });
    expect(batch.results.map((r) => r.success)).toEqual([true, false, true]);
  });

  it('manages the allow and block lists', async () => {
    const { value: phone_number } = phoneTarget();
    await prelude.verificationManagement.setPhoneNumber('block', { phone_number });
    const listed = await prelude.verificationManagement.listPhoneNumbers('block');
    expect(listed.phone_numbers.map((n) => n.phone_number)).toContain(phone_number);
    const blocked = await prelude.verification.create({
      target: { type: 'phone_number', value: phone_number },
    });
    expect(blocked).toMatchObject({ status: 'blocked', reason: 'in_block_list' });
    await prelude.verificationManagement.deletePhoneNumber('block', { phone_number });
    const after = await prelude.verificationManagement.listPhoneNumbers('block');
    expect(after.phone_numbers.map((n) => n.phone_number)).not.toContain(phone_number);
  });
});
