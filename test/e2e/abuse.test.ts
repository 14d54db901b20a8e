/**
 * Abuse resistance as an API caller meets it, over HTTP against the real stack: no enumeration of
 * who is being verified, no policy loosened by a caller, Idempotency-Keys bound to their request,
 * per-target limits across windows, one phone number whatever its spelling, and answers that fit
 * their deadline.
 */
import { api, strip } from '../support/api';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneNumber, uniquePhoneTarget, type TestStack } from '../support/stack';

describe('abuse resistance over HTTP', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      policy: { maxChecks: 2, successTemplateId: 'tpl_welcome' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  describe('no enumeration', () => {
    it('refuses a malformed code the same way whether the target has a window or not', async () => {
      const open = uniquePhoneTarget();
      await api(stack, 'POST', '/verifications', { target: open });
      const withWindow = await api(stack, 'POST', '/verifications/check', { target: open, code: '!' });
      const without = await api(stack, 'POST', '/verifications/check', {
        target: uniquePhoneTarget(),
        code: '!',
      });
      expect(strip(withWindow)).toEqual(strip(without));
      expect(withWindow).toMatchObject({ status: 400, body: { code: 'invalid_code' } });
    });

    it('answers a target whose window closed, however, exactly like one that never had one', async () => {
      const never = strip(
        await api(stack, 'POST', '/verifications/check', { target: uniquePhoneTarget(), code: '123456' }),
      );
      expect(never).toEqual({ status: 200, body: { status: 'expired_or_not_found' } });

      const spent = uniquePhoneTarget();
      await api(stack, 'POST', '/verifications', { target: spent });
      for (let i = 0; i < 2; i++)
        await api(stack, 'POST', '/verifications/check', { target: spent, code: 'WRONG1' });
      const verified = uniquePhoneTarget();
      await api(stack, 'POST', '/verifications', { target: verified });
      await api(stack, 'POST', '/verifications/check', {
        target: verified,
        code: await stack.latestCode(verified.value),
      });
      const canceled = uniquePhoneTarget();
      const { body } = await api(stack, 'POST', '/verifications', { target: canceled });
      await api(stack, 'DELETE', `/verifications/${body.id}`);

      for (const target of [spent, verified, canceled]) {
        expect(strip(await api(stack, 'POST', '/verifications/check', { target, code: '123456' }))).toEqual(
          never,
        );
      }
    });

    it('reads and cancels only window IDs: anything else is 404, never 500 or 503', async () => {
      const ids = [
        'verification-+33612345678',
        `verification-${'a'.repeat(31)}`,
        `verification-${'A'.repeat(32)}`,
        'prelude-event-evt_01jnh4zwabf1grfsaq955ej3mt',
        `target-limits-${'a'.repeat(32)}`,
        'x',
        `verification-${'a'.repeat(500)}`,
      ];
      for (const id of ids) {
        for (const method of ['GET', 'DELETE']) {
          const answer = await api(stack, method, `/verifications/${encodeURIComponent(id)}`);
          expect([id, method, answer.status, answer.body.code]).toEqual([id, method, 404, 'not_found']);
        }
      }
      expect((await api(stack, 'GET', '/verifications/')).status).toBe(404);
    });
  });

  describe('callers cannot loosen policy', () => {
    it('refuses policy and security options, and lets safe ones through', async () => {
      const target = uniquePhoneTarget();
      for (const body of [
        { target, policy: { maxChecks: 100, resendCooldownSeconds: 0 } },
        { target, options: { custom_code: '1234' } },
        { target, options: { code_size: 4 } },
        { target, options: { callback_url: 'https://evil.example/hook' } },
        { target, signals: { is_trusted_user: true } },
      ]) {
        const refused = await api(stack, 'POST', '/verifications', body);
        expect(refused).toMatchObject({ status: 400, body: { code: 'override_not_allowed' } });
      }
      const fine = await api(stack, 'POST', '/verifications', {
        target,
        options: { locale: 'fr-FR', preferred_channel: 'sms' },
        signals: { ip: '203.0.113.9' },
      });
      expect(fine).toMatchObject({ status: 200, body: { status: 'success' } });
      expect(await stack.latestCode(target.value)).not.toBe('1234');
    });
  });

  describe('Idempotency-Key bound to its request', () => {
    it('answers a retry with the first answer, refuses the key for another code, and checks its format', async () => {
      const target = uniquePhoneTarget();
      await api(stack, 'POST', '/verifications', { target });
      const code = await stack.latestCode(target.value);
      const key = { 'idempotency-key': 'k1:login-42' };
      const first = await api(stack, 'POST', '/verifications/check', { target, code }, key);
      expect(first).toMatchObject({ status: 200, body: { status: 'success' } });
      // The window is now closed; the same key and request still get the first answer…
      expect(strip(await api(stack, 'POST', '/verifications/check', { target, code }, key))).toEqual(
        strip(first),
      );
      // …and the key with another code is refused, not answered `success`.
      const reused = await api(stack, 'POST', '/verifications/check', { target, code: '000000' }, key);
      expect(reused).toMatchObject({ status: 422, body: { code: 'idempotency_key_reused' } });

      for (const bad of ['', 'has space', 'ünïcode', 'a'.repeat(256), 'semi;colon']) {
        const answer = await api(
          stack,
          'POST',
          '/verifications/check',
          { target, code },
          { 'idempotency-key': bad },
        );
        expect([bad, answer.status, answer.body.code]).toEqual([bad, 400, 'invalid_idempotency_key']);
      }
    });

    it('spends one check for a keyed request sent twice to an open window', async () => {
      const target = uniquePhoneTarget();
      const { body: window } = await api(stack, 'POST', '/verifications', { target });
      const key = { 'idempotency-key': 'wrong-once' };
      const first = await api(stack, 'POST', '/verifications/check', { target, code: 'BADBAD' }, key);
      const again = await api(stack, 'POST', '/verifications/check', { target, code: 'BADBAD' }, key);
      expect(strip(again)).toEqual(strip(first));
      expect((await api(stack, 'GET', `/verifications/${window.id}`)).body.checks_used).toBe(1);
    });
  });

  describe('per-target limits and windows', () => {
    it('opens a new window at once after one closed, while the closed one still reports its outcome', async () => {
      const target = uniquePhoneTarget();
      const { body: first } = await api(stack, 'POST', '/verifications', { target });
      await api(stack, 'POST', '/verifications/check', {
        target,
        code: await stack.latestCode(target.value),
      });
      // The verified window sends a success message afterwards; a new start must not wait for it.
      const next = await api(stack, 'POST', '/verifications', { target });
      expect(next).toMatchObject({ status: 200, body: { status: 'success', attempts: 1, id: first.id } });
      expect(next.body.verification_id).not.toBe(first.verification_id);
    });

    it('answers 429 target_rate_limited with retry_after_seconds once a target used its windows', async () => {
      const target = uniquePhoneTarget();
      const answers = [];
      for (let i = 0; i < 6; i++) {
        const { body } = await api(stack, 'POST', '/verifications', { target });
        answers.push(body.status ?? body.code);
        if (body.id) await api(stack, 'DELETE', `/verifications/${body.id}`);
      }
      expect(answers).toEqual(['success', 'success', 'success', 'success', 'success', 'target_rate_limited']);
      const limited = await api(stack, 'POST', '/verifications', { target });
      expect(limited).toMatchObject({ status: 429, body: { code: 'target_rate_limited' } });
      expect(limited.body.retry_after_seconds).toBeGreaterThan(80_000);
      expect(limited.headers.get('retry-after')).toBe(String(limited.body.retry_after_seconds));
    });

    it('shows the target’s limits and Watch’s verdict in the window', async () => {
      const target = uniquePhoneTarget();
      const { body } = await api(stack, 'POST', '/verifications', { target });
      const { body: window } = await api(stack, 'GET', `/verifications/${body.id}`);
      expect(window).toMatchObject({
        prediction: 'legitimate',
        target_limits: { windows_left: 4, sends_left: 9, next_release_at: expect.any(String) },
      });
    });
  });

  it('files every spelling of a number under one window', async () => {
    const national = uniquePhoneNumber().slice(3); // 9 digits after +33
    const spellings = [
      `+33${national}`,
      `+33 (0)${national.replace(/(\d)(?=(\d\d)+$)/g, '$1 ')}`,
      `0033${national}`,
    ];
    for (const value of spellings) {
      const check = await api(stack, 'POST', '/verifications/check', {
        target: { type: 'phone_number', value },
        code: '123456',
      });
      expect(check.status).toBe(200);
    }
    const started = await api(stack, 'POST', '/verifications', {
      target: { type: 'phone_number', value: spellings[1] },
    });
    const again = await api(stack, 'POST', '/verifications', {
      target: { type: 'phone_number', value: spellings[2] },
    });
    expect(again.body.id).toBe(started.body.id);
    const bad = await api(stack, 'POST', '/verifications', {
      target: { type: 'phone_number', value: '06 12 34 56 78' },
    });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
  });
});

describe('answers that fit their deadline', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ withServer: true, callTimeoutMs: 1_500 });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  // The latency a test turns comes back whether it passed or not.
  afterEach(() => stack.resetSandbox());

  it('answers 202 pending with the window ID when a send outlives the deadline, and the send completes', async () => {
    await stack.configureSandbox({ latencyMs: 2_500 });
    const target = uniquePhoneTarget();
    const pending = await api(stack, 'POST', '/verifications', { target });
    await stack.resetSandbox();
    expect(pending).toMatchObject({
      status: 202,
      body: { status: 'pending', id: expect.stringMatching(/^verification-/) },
    });
    await eventually(
      async () => (await api(stack, 'GET', `/verifications/${pending.body.id}`)).body.attempts?.length === 1,
      { description: 'the pending send recorded in its window', timeoutMs: 15_000, intervalMs: 200 },
    );
  });
});

describe('operator-allowed overrides', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({
      withServer: true,
      allowOverrides: ['policy.maxChecks', 'options.custom_code'],
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('accepts exactly the fields SERVICE_ALLOW_OVERRIDES names', async () => {
    const target = uniquePhoneTarget();
    const allowed = await api(stack, 'POST', '/verifications', {
      target,
      policy: { maxChecks: 1 },
      options: { custom_code: '4321' },
    });
    expect(allowed).toMatchObject({ status: 200, body: { status: 'success' } });
    expect(await stack.latestCode(target.value)).toBe('4321');
    const refused = await api(stack, 'POST', '/verifications', {
      target: uniquePhoneTarget(),
      policy: { windowSeconds: 5 },
    });
    expect(refused).toMatchObject({ status: 400, body: { code: 'override_not_allowed' } });
    expect(refused.body.message).toContain('policy.windowSeconds');
  });
});
