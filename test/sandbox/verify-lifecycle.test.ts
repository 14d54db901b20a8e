/**
 * The sandbox's Verify lifecycle, rule by rule (section 10 of the Prelude API notes), over HTTP.
 * Spans of time (TTL, rate-limit span) pass by advancing the sandbox's clock, never by sleeping.
 */
import { PreludeClient, type VerificationHistory } from '../../src/prelude';
import { SandboxClock } from '../../src/sandbox/clock';
import { Inbox } from '../../src/sandbox/inbox';
import { initialSettings } from '../../src/sandbox/settings';
import { VerifyEngine } from '../../src/sandbox/verify-engine';
import type { WebhookDispatcher } from '../../src/sandbox/webhooks';
import { loadConfig } from '../../temporal.config';
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

describe('sandbox Verify: History API', () => {
  let t: TestSandbox;
  let client: PreludeClient;
  beforeAll(async () => {
    t = await startTestSandbox({ SANDBOX_MAX_CHECKS: '3', SANDBOX_DELIVERY_DELAY_MS: '0' });
    client = new PreludeClient({ apiKey: 'test-key', baseUrl: t.url, timeoutMs: 3_000 });
  });
  afterAll(() => t.stop());
  afterEach(() => t.reset());

  const history = (id: string) => t.call('GET', `/v2/verification/phone/history/${encodeURIComponent(id)}`);
  /** Opens a phone window through the client; its id and the code it sent. */
  const open = async (target = phoneTarget(), correlationId?: string) => {
    const opened = await client.verification.create({
      target,
      ...(correlationId ? { metadata: { correlation_id: correlationId } } : {}),
    });
    return { target, id: opened.id, code: (await t.latestMessage(target.value))!.code! };
  };
  const typesOf = (record: VerificationHistory) => record.lifecycle.events.map((e) => e.type);
  const checksOf = (record: VerificationHistory) =>
    record.lifecycle.events.filter((e) => e.type === 'check').map((e) => e.check?.is_valid);

  it('records create, attempt and each judged check: a wrong then a right code is converted', async () => {
    const { target, id, code } = await open(phoneTarget(), 'order-h1');
    expect((await client.verification.history(id)).status).toBe('sent');
    expect(
      (await client.verification.check({ target, code: code === '000000' ? '000001' : '000000' })).status,
    ).toBe('failure');
    expect((await client.verification.check({ target, code })).status).toBe('success');

    const record = await client.verification.history(id);
    expect(record).toMatchObject({
      id,
      phone_number: target.value,
      status: 'converted',
      correlation_id: 'order-h1',
      created_at: expect.any(String),
      expires_at: expect.any(String),
      request_id: expect.any(String),
    });
    // The window is the suite's default 600 s.
    expect(Date.parse(record.expires_at as string) - Date.parse(record.created_at as string)).toBe(600_000);
    expect(typesOf(record)).toEqual(['create', 'attempt', 'check', 'check']);
    expect(checksOf(record)).toEqual([false, true]);
    expect(record.lifecycle.events[1]).toMatchObject({
      type: 'attempt',
      attempt: {
        id: expect.stringMatching(/^att_/),
        channel: 'sms',
        status: 'succeeded',
        trigger: 'initial',
      },
    });
    // Each event holds only the payload of its own type.
    expect(Object.keys(record.lifecycle.events[0]!).sort()).toEqual(['create', 'type']);
    expect(Object.keys(record.lifecycle.events[2]!).sort()).toEqual(['check', 'type']);

    // Reads are not in the call log, which counts the creates and checks only.
    expect((await t.calls(target.value)).map((c: { operation: string }) => c.operation)).toEqual([
      'verification.check',
      'verification.check',
      'verification.create',
    ]);
  });

  it('adds an attempt with trigger user_retry for a resend in the window', async () => {
    const { target, id } = await open();
    expect((await client.verification.create({ target })).status).toBe('retry');
    const record = await client.verification.history(id);
    expect(record.status).toBe('sent');
    expect(typesOf(record)).toEqual(['create', 'attempt', 'attempt']);
    expect(
      record.lifecycle.events.map((e) => (e.attempt as { trigger?: string } | undefined)?.trigger),
    ).toEqual([undefined, 'initial', 'user_retry']);
  });

  it('leaves out a check refused as too many, and a check after the success', async () => {
    const spent = await open();
    for (const code of ['000000', '000001', '000002']) {
      const wrong = code === spent.code ? '999999' : code;
      expect((await client.verification.check({ target: spent.target, code: wrong })).status).toBe('failure');
    }
    await expect(client.verification.check({ target: spent.target, code: spent.code })).rejects.toMatchObject(
      {
        status: 429,
        code: 'too_many_checks',
      },
    );
    const refused = await client.verification.history(spent.id);
    expect(checksOf(refused)).toEqual([false, false, false]);
    // Its checks ran out with none valid, though the window is still open.
    expect(refused.status).toBe('not_converted');

    const converted = await open();
    expect((await client.verification.check({ target: converted.target, code: converted.code })).status).toBe(
      'success',
    );
    expect((await client.verification.check({ target: converted.target, code: converted.code })).status).toBe(
      'expired_or_not_found',
    );
    const record = await client.verification.history(converted.id);
    expect(checksOf(record)).toEqual([true]);
    expect(record.status).toBe('converted');
  });

  it('reads not_converted once the window expired, and keeps the record an hour past its expiry', async () => {
    const { target, id, code } = await open();
    const wrong = code === '000000' ? '000001' : '000000';
    expect((await client.verification.check({ target, code: wrong })).status).toBe('failure');
    await t.advanceClock(600);
    // The expired window is gone (the next create opens a new one), its record is not.
    expect((await client.verification.create({ target })).id).not.toBe(id);
    const expired = await client.verification.history(id);
    expect(expired.status).toBe('not_converted');
    expect(typesOf(expired)).toEqual(['create', 'attempt', 'check']);
    expect(checksOf(expired)).toEqual([false]);

    await t.advanceClock(3_599);
    expect((await history(id)).status).toBe(200);
    await t.advanceClock(1);
    expect(await history(id)).toMatchObject({ status: 404, body: { code: 'not_found' } });
  });

  it('records the check of a dropped answer: the client saw a network error, the window converted', async () => {
    const opened = await open();
    await t.configure({ dropNextAnswers: { 'verification.check': 1 } });
    await expect(
      client.verification.check({ target: opened.target, code: opened.code }),
    ).rejects.toMatchObject({ kind: 'network' });
    const record = await client.verification.history(opened.id);
    expect(checksOf(record)).toEqual([true]);
    expect(record.status).toBe('converted');
  });

  it('gives a blocked create a record with no attempt: in_blocklist, rate_limited', async () => {
    const listed = phoneTarget();
    await t.call('POST', '/v2/verification/management/phone-numbers/block', { phone_number: listed.value });
    const blocked = await client.verification.create({ target: listed });
    expect(blocked.status).toBe('blocked');
    const record = await client.verification.history(blocked.id);
    expect(record).toMatchObject({ id: blocked.id, phone_number: listed.value, status: 'in_blocklist' });
    expect(typesOf(record)).toEqual(['create']);

    await t.configure({ numberRateLimit: 1, numberRateLimitSeconds: 60 });
    const { target } = await open();
    const limited = await client.verification.create({ target });
    expect(limited).toMatchObject({ status: 'blocked', reason: 'repeated_attempts' });
    expect((await client.verification.history(limited.id)).status).toBe('rate_limited');
  });

  it('answers 404 not_found for an e-mail verification and for an unknown id', async () => {
    const email = { type: 'email_address', value: `someone.${uniqueNumber().slice(1)}@example.com` };
    const opened = await t.call('POST', '/v2/verification', { target: email });
    expect(opened.body).toMatchObject({ status: 'success', id: expect.stringMatching(/^vrf_/) });
    expect(await history(opened.body.id)).toMatchObject({
      status: 404,
      body: {
        code: 'not_found',
        message: expect.any(String),
        type: 'not_found',
        request_id: expect.any(String),
      },
    });
    expect(await history('vrf_01jc0t6fwwfgfsq1md24mhyztj')).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    });
  });

  it('takes the API key and the fault knobs of the other Prelude routes, but is never dropped', async () => {
    const { id } = await open();
    expect(
      (await t.call('GET', `/v2/verification/phone/history/${id}`, undefined, { token: null })).status,
    ).toBe(401);
    await t.configure({ errorRate: 1 });
    expect(await history(id)).toMatchObject({ status: 500, body: { code: 'internal' } });
    await t.configure({ errorRate: 0, rateLimitRate: 1 });
    expect(await history(id)).toMatchObject({ status: 429, body: { code: 'rate_limited' } });
    await t.configure({ rateLimitRate: 0, dropAnswerRate: 1 });
    expect((await history(id)).status).toBe(200);
  });

  it('with historyApi off answers 404 as for an account without access; back on, 200', async () => {
    const { id } = await open();
    expect((await t.call('GET', '/sandbox/config')).body.historyApi).toBe(true);
    await t.configure({ historyApi: false });
    expect(await history(id)).toMatchObject({
      status: 404,
      body: { code: 'not_found', message: 'the History API is not enabled for this account' },
    });
    await t.configure({ historyApi: true });
    expect(await history(id)).toMatchObject({ status: 200, body: { id, status: 'sent' } });
  });

  it('reads SANDBOX_HISTORY_API as true or false, on by default', () => {
    expect(loadConfig({}).sandbox.historyApi).toBe(true);
    expect(loadConfig({ SANDBOX_HISTORY_API: 'false' }).sandbox.historyApi).toBe(false);
    expect(loadConfig({ SANDBOX_HISTORY_API: 'true' }).sandbox.historyApi).toBe(true);
    expect(() => loadConfig({ SANDBOX_HISTORY_API: 'yes' })).toThrow(/SANDBOX_HISTORY_API/);
  });

  it('keeps at most its capacity of records, dropping the oldest', () => {
    const clock = new SandboxClock();
    const settings = initialSettings(
      loadConfig({ SANDBOX_PORT: '0', SANDBOX_DELIVERY_DELAY_MS: '0' }).sandbox,
    );
    const webhooks = { send: () => undefined } as unknown as WebhookDispatcher;
    const engine = new VerifyEngine(() => settings, new Inbox(clock), webhooks, clock, 2);
    const ids = [phoneTarget(), phoneTarget(), phoneTarget()].map((target) => {
      const answer = engine.create({ target });
      if (answer.status !== 200) throw new Error(`create refused: ${answer.code}`);
      return answer.body.id as string;
    });
    expect(ids.map((id) => engine.history(id)?.status)).toEqual([undefined, 'sent', 'sent']);
  });
});
