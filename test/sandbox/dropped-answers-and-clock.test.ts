/**
 * The sandbox's answer-dropping knobs (a call carried out whose answer is lost, as after a crash or
 * a network cut) and its clock (`/sandbox/clock`), over HTTP, with the project's Prelude client.
 */
import { PreludeClient, PreludeError } from '../../src/prelude';
import { phoneTarget, startTestSandbox, type TestSandbox } from './support';

describe('sandbox dropped answers', () => {
  let t: TestSandbox;
  let client: PreludeClient;
  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_DELIVERY_DELAY_MS: '0' });
    client = new PreludeClient({ apiKey: 'test-key', baseUrl: t.url, timeoutMs: 3_000 });
  });
  afterAll(() => t.stop());
  // Drops still pending, drop rates and cooldowns a test set are put back whether it passed or not.
  afterEach(() => t.reset());

  it('carries out a create whose answer is dropped: the client sees a network error, the window exists', async () => {
    await t.configure({ dropNextAnswers: { 'verification.create': 1 } });
    const target = phoneTarget();

    const lost = client.verification.create({ target, metadata: { correlation_id: 'lost-1' } });
    await expect(lost).rejects.toThrow(PreludeError);
    await expect(lost).rejects.toMatchObject({ kind: 'network', code: 'network_error' });

    // The code went out, and the call log has the answer the client never got.
    expect((await t.latestMessage(target.value))?.code).toMatch(/^\d{6}$/);
    const [logged] = await t.calls(target.value);
    expect(logged).toMatchObject({
      operation: 'verification.create',
      target,
      status: 200,
      answer: { status: 'success', id: expect.stringMatching(/^vrf_/) },
      dropped: true,
    });

    // Only one answer was to be lost; the next create finds the window and is a retry of it.
    const again = await client.verification.create({ target });
    expect(again).toMatchObject({
      status: 'retry',
      id: logged.answer.id,
      metadata: { correlation_id: 'lost-1' },
    });
    expect((await t.call('GET', '/sandbox/config')).body.dropNextAnswers).toEqual({});
    expect((await t.calls(target.value))[0]).toMatchObject({ answer: { status: 'retry' }, dropped: false });
  });

  it('carries out a Notify send whose answer is dropped: the message went out, and the log has it', async () => {
    await t.configure({ dropNextAnswers: { 'notify.send': 1 } });
    const target = phoneTarget();
    const request = { to: target.value, template_id: 'template_sandbox_verified' };

    await expect(client.notify.send(request)).rejects.toMatchObject({ kind: 'network' });
    expect((await t.latestMessage(target.value))?.body).toMatch(/verified/);
    const [logged] = await t.calls(target.value);
    expect(logged).toMatchObject({
      operation: 'notify.send',
      target,
      status: 200,
      answer: { id: expect.stringMatching(/^tx_/), to: target.value },
      dropped: true,
    });

    // A Notify send has no window: sent again, it is a second message, answered this time.
    await expect(client.notify.send(request)).resolves.toMatchObject({ id: expect.stringMatching(/^tx_/) });
    const sends = (await t.calls(target.value)).filter(
      (c: { operation: string }) => c.operation === 'notify.send',
    );
    expect(sends.map((c: { dropped: boolean }) => c.dropped)).toEqual([false, true]);
  });

  it('carries out a check whose answer is dropped: the right code converted the window', async () => {
    await t.configure({ dropNextAnswers: { 'verification.check': 1 } });
    const target = phoneTarget();
    const opened = await client.verification.create({ target });
    const code = (await t.latestMessage(target.value))!.code!;

    await expect(client.verification.check({ target, code })).rejects.toMatchObject({
      name: 'PreludeError',
      kind: 'network',
      code: 'network_error',
    });
    expect((await t.calls(target.value))[0]).toMatchObject({
      operation: 'verification.check',
      answer: { status: 'success', id: opened.id },
      dropped: true,
    });

    // The success closed the window: checking again finds nothing.
    expect(await client.verification.check({ target, code })).toMatchObject({
      status: 'expired_or_not_found',
    });
  });

  it('drops the next N answers of an operation, then answers again; 0 cancels', async () => {
    await t.configure({ dropNextAnswers: { 'verification.check': 2, 'verification.create': 3 } });
    expect((await t.call('GET', '/sandbox/config')).body.dropNextAnswers).toEqual({
      'verification.check': 2,
      'verification.create': 3,
    });
    await t.configure({ dropNextAnswers: { 'verification.create': 0 } });
    const target = phoneTarget();
    await client.verification.create({ target });

    for (const code of ['000000', '000001']) {
      await expect(client.verification.check({ target, code })).rejects.toMatchObject({ kind: 'network' });
    }
    // Both wrong codes counted against the window although their answers were lost.
    expect(await client.verification.check({ target, code: '000002' })).toMatchObject({ status: 'failure' });
    const checks = (await t.calls(target.value)).filter((c) => c.operation === 'verification.check');
    expect(checks.map((c) => [c.answer.status, c.dropped])).toEqual([
      ['failure', false],
      ['failure', true],
      ['failure', true],
    ]);
  });

  it('counts only calls that reach Prelude’s rules: refused requests keep their answers', async () => {
    await t.configure({ dropNextAnswers: { 'verification.create': 1 } });
    const invalid = await t.call('POST', '/v2/verification', {
      target: { type: 'phone_number', value: 'not-a-number' },
    });
    expect(invalid).toMatchObject({ status: 400, body: { code: 'invalid_phone_number' } });
    expect((await t.call('GET', '/sandbox/config')).body.dropNextAnswers).toEqual({
      'verification.create': 1,
    });

    // A lifecycle refusal is carried out like any answer, and is what gets lost.
    await t.configure({ dropNextAnswers: { 'verification.create': 0 }, minRetryDelaySeconds: 30 });
    const target = phoneTarget();
    await client.verification.create({ target });
    await t.configure({ dropNextAnswers: { 'verification.create': 1 } });
    await expect(client.verification.create({ target })).rejects.toMatchObject({ kind: 'network' });
    expect((await t.calls(target.value))[0]).toMatchObject({
      status: 429,
      answer: { code: 'premature_retry' },
      dropped: true,
    });
  });

  it('drops a share of Verify and Notify answers with dropAnswerRate, and never a Watch answer', async () => {
    await t.configure({ dropAnswerRate: 1 });
    const target = phoneTarget();
    await expect(client.verification.create({ target })).rejects.toMatchObject({ kind: 'network' });
    await expect(client.verification.create({ target })).rejects.toMatchObject({ kind: 'network' });
    await expect(client.verification.check({ target, code: '000000' })).rejects.toMatchObject({
      kind: 'network',
    });
    await expect(
      client.notify.send({ template_id: 'template_sandbox_verified', to: target.value }),
    ).rejects.toMatchObject({ kind: 'network' });
    expect((await client.watch.predict({ target })).prediction).toBe('legitimate');

    await t.configure({ dropAnswerRate: 0 });
    expect((await client.verification.create({ target })).status).toBe('retry');
    expect((await t.calls(target.value)).map((c) => [c.operation, c.dropped])).toEqual([
      ['verification.create', false],
      ['notify.send', true],
      ['verification.check', true],
      ['verification.create', true],
      ['verification.create', true],
    ]);
  });

  it('cuts a share of checks before carrying them out with cutCheckRate: nothing spent, nothing logged', async () => {
    const target = phoneTarget();
    await client.verification.create({ target });
    await t.configure({ cutCheckRate: 1 });
    for (let i = 0; i < 3; i += 1) {
      await expect(client.verification.check({ target, code: '000000' })).rejects.toMatchObject({
        kind: 'network',
      });
    }
    // Creates are never cut.
    expect((await client.verification.create({ target })).status).toBe('retry');
    await t.configure({ cutCheckRate: 0 });
    expect((await t.calls(target.value)).map((c) => c.operation)).toEqual([
      'verification.create',
      'verification.create',
    ]);
    // No check was spent: Prelude's record holds none.
    const { id } = await client.verification.create({ target });
    const history = await client.verification.history(id);
    expect(history.lifecycle.events.filter((event) => event.type === 'check')).toHaveLength(0);
  });

  it('cuts a share of creates before carrying them out with cutCreateRate: no code, no attempt, nothing logged', async () => {
    const target = phoneTarget();
    const { id } = await client.verification.create({ target });
    await t.configure({ cutCreateRate: 1 });
    for (let i = 0; i < 2; i += 1) {
      await expect(client.verification.create({ target })).rejects.toMatchObject({ kind: 'network' });
    }
    // Checks are not cut by it.
    expect((await client.verification.check({ target, code: '000000' })).status).toBe('failure');
    await t.configure({ cutCreateRate: 0 });
    expect((await t.calls(target.value)).map((c) => c.operation)).toEqual([
      'verification.check',
      'verification.create',
    ]);
    const inbox = await t.call('GET', `/sandbox/messages?to=${encodeURIComponent(target.value)}`);
    expect(inbox.body.messages).toHaveLength(1);
    // Prelude's record holds the one attempt that went out.
    const history = await client.verification.history(id);
    expect(history.lifecycle.events.filter((event) => event.type === 'attempt')).toHaveLength(1);

    // Deterministic: the next create only.
    await t.configure({ cutNextCalls: { 'verification.create': 1 } });
    await expect(client.verification.create({ target })).rejects.toMatchObject({ kind: 'network' });
    expect((await client.verification.create({ target })).status).toBe('retry');
    const after = await client.verification.history(id);
    expect(after.lifecycle.events.filter((event) => event.type === 'attempt')).toHaveLength(2);
  });

  it('refuses unknown operations and bad counts in the knobs', async () => {
    const refused = async (knobs: unknown) => (await t.call('PUT', '/sandbox/config', knobs)).status;
    expect(await refused({ dropNextAnswers: { 'watch.predict': 1 } })).toBe(400);
    expect(await refused({ dropNextAnswers: { 'verification.create': -1 } })).toBe(400);
    expect(await refused({ dropAnswerRate: 1.5 })).toBe(400);
    expect(await refused({ cutCheckRate: 1.5 })).toBe(400);
    expect(await refused({ cutCreateRate: -0.1 })).toBe(400);
    expect(await refused({ cutNextCalls: { 'notify.send': -1 } })).toBe(400);
  });
});

describe('sandbox clock', () => {
  let t: TestSandbox;
  let client: PreludeClient;
  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_WINDOW_SECONDS: '600', SANDBOX_DELIVERY_DELAY_MS: '0' });
    client = new PreludeClient({ apiKey: 'test-key', baseUrl: t.url, timeoutMs: 3_000 });
  });
  afterAll(() => t.stop());
  afterEach(() => t.reset());

  it('shows its time, and moves forward by seconds or milliseconds, never back', async () => {
    const before = (await t.call('GET', '/sandbox/clock')).body;
    expect(before).toEqual({
      now: expect.any(String),
      nowMs: expect.any(Number),
      offsetMs: expect.any(Number),
    });
    expect(Date.parse(before.now)).toBe(before.nowMs);

    const advanced = await t.advanceClock(90);
    expect(advanced.offsetMs).toBe(before.offsetMs + 90_000);
    expect(advanced.nowMs - before.nowMs).toBeGreaterThanOrEqual(90_000);
    const byMs = await t.call('POST', '/sandbox/clock/advance', { ms: 1_500 });
    expect(byMs.body.offsetMs).toBe(before.offsetMs + 91_500);

    for (const body of [{ seconds: -1 }, { ms: 1.5 }, { seconds: 1, ms: 1 }, {}, { minutes: 1 }]) {
      const refused = await t.call('POST', '/sandbox/clock/advance', body);
      expect(refused).toMatchObject({ status: 400, body: { code: 'invalid_clock_advance' } });
    }
    expect((await t.call('GET', '/sandbox/clock')).body.offsetMs).toBe(before.offsetMs + 91_500);
  });

  it('expires a window once the clock passes its TTL: the check answers expired_or_not_found', async () => {
    const target = phoneTarget();
    await client.verification.create({ target });
    const code = (await t.latestMessage(target.value))!.code!;
    await t.advanceClock(590);
    expect(await client.verification.check({ target, code: '000000' })).toMatchObject({ status: 'failure' });
    await t.advanceClock(10);
    expect(await client.verification.check({ target, code })).toMatchObject({
      status: 'expired_or_not_found',
    });
    expect((await client.verification.create({ target })).status).toBe('success');
  });

  it('skips a retry cooldown: premature_retry until the clock has moved past the minimum delay', async () => {
    await t.configure({ minRetryDelaySeconds: 30 });
    const target = phoneTarget();
    const opened = await client.verification.create({ target });

    const early = client.verification.create({ target });
    await expect(early).rejects.toThrow(PreludeError);
    await expect(early).rejects.toMatchObject({ kind: 'lifecycle', code: 'premature_retry' });
    await t.advanceClock(29);
    await expect(client.verification.create({ target })).rejects.toMatchObject({
      kind: 'lifecycle',
      code: 'premature_retry',
      retryAfterMs: 1_000,
    });
    await t.advanceClock(1);
    expect(await client.verification.create({ target })).toMatchObject({ status: 'retry', id: opened.id });
  });

  it('stamps inbox messages with its time, and Notify validates times against it', async () => {
    const target = phoneTarget();
    const { nowMs } = await t.advanceClock(2 * 86_400);
    await client.verification.create({ target });
    const [message] = (await t.call('GET', `/sandbox/messages?to=${encodeURIComponent(target.value)}`)).body
      .messages;
    expect(Date.parse(message.created_at)).toBeGreaterThanOrEqual(nowMs);

    // An hour from real time is in the sandbox's past now.
    const refused = await t.call('POST', '/v2/notify', {
      template_id: 'template_sandbox_verified',
      to: target.value,
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(refused).toMatchObject({ status: 400, body: { code: 'expires_at_in_past' } });
  });
});
