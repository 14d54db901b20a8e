/**
 * The sandbox's Verify lifecycle, rule by rule (section 10 of the Prelude API notes), over HTTP.
 * Spans of time (TTL, rate-limit span) pass by advancing the sandbox's clock, never by sleeping.
 */
import { phoneTarget, startTestSandbox, uniqueNumber, type TestSandbox } from './support';

describe('sandbox Verify: create', () => {
  let t: TestSandbox;
  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_MAX_ATTEMPTS: '3', SANDBOX_MAX_CHECKS: '2' });
  });
  afterAll(() => t.stop());
  // Knobs a test turns (API key, cooldown, rate limit, attempts) are put back whether it passed or not.
  afterEach(() => t.reset());

  const create = (body: unknown, token?: string | null) =>
    t.call('POST', '/v2/verification', body, { token });

  it('1. refuses a missing or wrong bearer token with 401 and changes nothing', async () => {
    const target = phoneTarget();
    const missing = await create({ target }, null);
    expect(missing.status).toBe(401);
    expect(missing.body).toMatchObject({
      code: 'invalid_api_key',
      type: expect.any(String),
      message: expect.any(String),
    });

    await t.configure({ apiKey: 'the-only-key' });
    expect((await create({ target }, 'another-key')).status).toBe(401);
    expect(await t.latestMessage(target.value)).toBeUndefined();
    expect((await create({ target }, 'the-only-key')).body.status).toBe('success');
  });

  it('2. refuses a malformed target with 400 and Prelude’s error body', async () => {
    const notE164 = await create({ target: { type: 'phone_number', value: '0612345678' } });
    expect(notE164.status).toBe(400);
    expect(notE164.body).toEqual({
      code: 'invalid_phone_number',
      message: expect.any(String),
      type: 'bad_request',
      request_id: expect.any(String),
    });
    expect((await create({ target: { type: 'fax', value: '+33612345678' } })).status).toBe(400);
    expect((await create({})).status).toBe(400);
    expect((await create({ target: { type: 'email_address', value: 'not-an-address' } })).body.code).toBe(
      'invalid_email_address',
    );
  });

  it('3. refuses bad options with their own codes', async () => {
    const target = phoneTarget();
    const codeOf = async (extra: Record<string, unknown>) => (await create({ target, ...extra })).body.code;
    expect(await codeOf({ options: { code_size: 3 } })).toBe('invalid_code_size');
    expect(await codeOf({ options: { code_size: 9 } })).toBe('invalid_code_size');
    expect(await codeOf({ options: { code_size: 6, custom_code: '123456' } })).toBe('custom_size_conflict');
    expect(await codeOf({ options: { custom_code: '123' } })).toBe('invalid_custom_code');
    expect(await codeOf({ dispatch_id: 'short' })).toBe('invalid_dispatch_id');
    expect(await codeOf({ metadata: { correlation_id: 'x'.repeat(81) } })).toBe('invalid_correlation_id');
    expect(await codeOf({ options: { channels: ['sms'], preferred_channel: 'whatsapp' } })).toBe(
      'invalid_request',
    );
    // None of them opened a window: the first valid create is a new one.
    expect((await create({ target })).body.status).toBe('success');
  });

  it('4. answers blocked (in_block_list) for a blocked number, opening nothing', async () => {
    const target = phoneTarget();
    expect(
      (
        await t.call('POST', '/v2/verification/management/phone-numbers/block', {
          phone_number: target.value,
        })
      ).status,
    ).toBe(200);
    const answer = await create({ target });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      status: 'blocked',
      reason: 'in_block_list',
      id: expect.stringMatching(/^vrf_/),
    });
    expect(await t.latestMessage(target.value)).toBeUndefined();
    const check = await t.call('POST', '/v2/verification/check', { target, code: '123456' });
    expect(check.body.status).toBe('expired_or_not_found');

    await t.call('DELETE', '/v2/verification/management/phone-numbers/block', { phone_number: target.value });
    expect((await create({ target })).body.status).toBe('success');
  });

  it('5. blocks a number over the per-number rate limit (repeated_attempts) until the span elapses', async () => {
    await t.configure({ numberRateLimit: 2, numberRateLimitSeconds: 60, maxAttempts: 10 });
    const target = phoneTarget();
    expect((await create({ target })).body.status).toBe('success');
    expect((await create({ target })).body.status).toBe('retry');
    expect((await create({ target })).body).toMatchObject({ status: 'blocked', reason: 'repeated_attempts' });
    await t.advanceClock(30);
    expect((await create({ target })).body).toMatchObject({ status: 'blocked', reason: 'repeated_attempts' });
    await t.advanceClock(30);
    expect((await create({ target })).body.status).toBe('retry');
  });

  it('5b. lets an allow-listed number past the rate limit', async () => {
    await t.configure({ numberRateLimit: 1, numberRateLimitSeconds: 60 });
    const target = phoneTarget();
    await t.call('POST', '/v2/verification/management/phone-numbers/allow', { phone_number: target.value });
    expect((await create({ target })).body.status).toBe('success');
    expect((await create({ target })).body.status).toBe('retry');
  });

  it('6. opens a window with a new vrf_ id, sends a code of the configured size and echoes metadata', async () => {
    const target = phoneTarget();
    const answer = await create({ target, metadata: { correlation_id: 'order-42' } });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      id: expect.stringMatching(/^vrf_[0-9a-z]{26}$/),
      status: 'success',
      method: 'message',
      channels: expect.arrayContaining(['sms']),
      metadata: { correlation_id: 'order-42' },
      request_id: expect.any(String),
    });
    const message = await t.latestMessage(target.value);
    expect(message?.code).toMatch(/^\d{6}$/);
    expect(message?.body).toContain(message?.code);
  });

  it('6b. uses custom_code and code_size, and method voice', async () => {
    const custom = phoneTarget();
    await create({ target: custom, options: { custom_code: 'AB12' } });
    expect((await t.latestMessage(custom.value))?.code).toBe('AB12');

    const sized = phoneTarget();
    await create({ target: sized, options: { code_size: 4 } });
    expect((await t.latestMessage(sized.value))?.code).toMatch(/^\d{4}$/);

    const voice = phoneTarget();
    expect((await create({ target: voice, options: { method: 'voice' } })).body.method).toBe('voice');
    expect((await t.latestMessage(voice.value))?.channel).toBe('voice');
  });

  it('6c. verifies e-mail addresses by e-mail', async () => {
    const target = { type: 'email_address', value: `someone.${uniqueNumber().slice(1)}@example.com` };
    const answer = await create({ target });
    expect(answer.body).toMatchObject({ status: 'success', method: 'email', channels: ['email'] });
    expect((await t.latestMessage(target.value))?.channel).toBe('email');
  });

  it('7. a create inside an open window is a retry: same id, same code, next channel', async () => {
    const target = phoneTarget();
    const first = await create({ target, metadata: { correlation_id: 'first' } });
    const firstCode = (await t.latestMessage(target.value))?.code;
    const retry = await create({ target, metadata: { correlation_id: 'second' } });
    expect(retry.body).toMatchObject({ id: first.body.id, status: 'retry' });
    // 11. the correlation ID of the request that opened the window, and a fresh request_id
    expect(retry.body.metadata).toEqual({ correlation_id: 'first' });
    expect(retry.body.request_id).not.toBe(first.body.request_id);
    const resent = await t.latestMessage(target.value);
    expect(resent).toMatchObject({ code: firstCode, channel: 'whatsapp' });

    const preferred = await create({ target, options: { preferred_channel: 'sms' } });
    expect(preferred.body.status).toBe('retry');
    expect((await t.latestMessage(target.value))?.channel).toBe('sms');
  });

  it('8. a retry before the minimum delay is 429 premature_retry and records nothing', async () => {
    await t.configure({ minRetryDelaySeconds: 30 });
    const target = phoneTarget();
    await create({ target });
    const early = await create({ target });
    expect(early.status).toBe(429);
    expect(early.body).toMatchObject({ code: 'premature_retry', type: 'too_many_requests' });
    const retryAfter = Number(early.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(30);
    const inbox = await t.call('GET', `/sandbox/messages?to=${encodeURIComponent(target.value)}`);
    expect(inbox.body.messages).toHaveLength(1);
    // Once the sandbox's clock has moved by what Retry-After said, the retry goes through.
    await t.advanceClock(retryAfter);
    expect((await create({ target })).body.status).toBe('retry');
  });

  it('9. after max attempts a create is 429 too_many_attempts, checked before premature_retry', async () => {
    const target = phoneTarget();
    for (const expected of ['success', 'retry', 'retry']) {
      expect((await create({ target })).body.status).toBe(expected);
    }
    await t.configure({ minRetryDelaySeconds: 30 });
    const refused = await create({ target });
    expect(refused).toMatchObject({ status: 429, body: { code: 'too_many_attempts' } });
  });

  it('10. a window expires at its TTL, retries do not extend it, and the next create opens a new one', async () => {
    // windowSeconds is 600 (the default the suite starts with); the clock moves instead of the test waiting.
    const target = phoneTarget();
    const first = await create({ target });
    await t.advanceClock(300);
    expect((await create({ target })).body.status).toBe('retry');
    await t.advanceClock(300);
    const next = await create({ target });
    expect(next.body.status).toBe('success');
    expect(next.body.id).not.toBe(first.body.id);
  });

  it('12. force_challenge opens a window answered challenged, without sms or voice', async () => {
    const answer = await create({ target: phoneTarget(), options: { force_challenge: true } });
    expect(answer.body.status).toBe('challenged');
    expect(answer.body.channels).not.toContain('sms');
    expect(answer.body.channels).not.toContain('voice');
  });

  it('31. replaying an identical create is processed again (no idempotency)', async () => {
    const target = phoneTarget();
    const body = { target, metadata: { correlation_id: 'same' } };
    expect((await create(body)).body.status).toBe('success');
    expect((await create(body)).body.status).toBe('retry');
  });

  it('32. ignores unknown fields and SDK headers', async () => {
    const response = await fetch(`${t.url}/v2/verification`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer x',
        'content-type': 'application/json',
        'x-stainless-lang': 'js',
      },
      body: JSON.stringify({ target: phoneTarget(), a_field_from_the_future: { nested: true } }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { status: string }).status).toBe('success');
  });
});

describe('sandbox Verify: check', () => {
  let t: TestSandbox;
  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_MAX_CHECKS: '2' });
  });
  afterAll(() => t.stop());
  afterEach(() => t.reset());

  const check = (target: unknown, code: string) => t.call('POST', '/v2/verification/check', { target, code });

  it('13. answers expired_or_not_found, without an id, when no window is open', async () => {
    const answer = await check(phoneTarget(), '123456');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: 'expired_or_not_found', request_id: expect.any(String) });
  });

  it('14. the right code succeeds and closes the window', async () => {
    const target = phoneTarget();
    const opened = await t.call('POST', '/v2/verification', { target, metadata: { correlation_id: 'c-14' } });
    const code = (await t.latestMessage(target.value))!.code!;
    expect((await check(target, code)).body).toMatchObject({
      status: 'success',
      id: opened.body.id,
      metadata: { correlation_id: 'c-14' },
    });
    expect((await check(target, code)).body.status).toBe('expired_or_not_found');
    expect((await t.call('POST', '/v2/verification', { target })).body.status).toBe('success');
  });

  it('15–16. wrong codes fail and count; past max checks it is 429 too_many_checks, even for the right code', async () => {
    const target = phoneTarget();
    await t.call('POST', '/v2/verification', { target });
    const code = (await t.latestMessage(target.value))!.code!;
    expect((await check(target, '000000')).body.status).toBe('failure');
    expect((await check(target, '000001')).body.status).toBe('failure');
    const spent = await check(target, code);
    expect(spent).toMatchObject({ status: 429, body: { code: 'too_many_checks' } });
    // The window stays open until its TTL: a create is a retry, not a new window.
    expect((await t.call('POST', '/v2/verification', { target })).body.status).toBe('retry');
  });

  it('17. a sandbox number sends nothing and accepts only its registered code', async () => {
    const number = uniqueNumber();
    const registered = await t.call('PUT', '/v2/verification/management/phone-numbers/sandbox', {
      phone_number: number,
      attempt_code: '4242',
    });
    expect(registered.status).toBe(200);
    const listed = await t.call('GET', '/v2/verification/management/phone-numbers/sandbox');
    expect(listed.body.phone_numbers).toEqual(
      expect.arrayContaining([expect.objectContaining({ phone_number: number, attempt_code: '4242' })]),
    );

    const target = phoneTarget(number);
    await t.call('POST', '/v2/verification', { target, options: { custom_code: '9999' } });
    expect(await t.latestMessage(number)).toBeUndefined();
    expect((await check(target, '9999')).body.status).toBe('failure');
    expect((await check(target, '4242')).body.status).toBe('success');

    await t.call('DELETE', `/v2/verification/management/phone-numbers/sandbox/${encodeURIComponent(number)}`);
    const after = await t.call('GET', '/v2/verification/management/phone-numbers/sandbox');
    expect(after.body.phone_numbers.map((n: { phone_number: string }) => n.phone_number)).not.toContain(
      number,
    );
  });

  it('refuses a malformed check with 400', async () => {
    expect((await check({ type: 'phone_number', value: 'nope' }, '1234')).status).toBe(400);
  });
});
