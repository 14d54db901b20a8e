/**
 * The Prelude client as activities use it: real HTTP against the sandbox (and, for answers the
 * sandbox would never give, a tiny server of our own), every failure one typed PreludeError, and
 * the API key nowhere a log or an error could carry it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { PreludeClient, PreludeError } from '../../src/prelude';
import { startTestSandbox, phoneTarget, type TestSandbox } from '../sandbox/support';
import { settlingOrder } from '../support/settling';

const apiKey = 'prl_live_SECRET_4f9c2b7e1d';

/** The PreludeError a call fails with (fails the test if it succeeds). */
async function failure(call: Promise<unknown>): Promise<PreludeError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PreludeError);
  return error as PreludeError;
}

/** Asserts that nothing a log line could be made of carries the key. */
function expectNoKey(value: unknown): void {
  for (const text of [
    String(value),
    JSON.stringify(value),
    inspect(value, { depth: 10, showHidden: true }),
  ]) {
    expect(text).not.toContain(apiKey);
    expect(text).not.toContain('SECRET');
  }
  if (value instanceof Error) expect(value.stack ?? '').not.toContain(apiKey);
}

/** A server answering every request with one fixed answer. */
async function fixedServer(status: number, body: unknown, headers: Record<string, string> = {}) {
  const server: Server = createServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('PreludeClient against the sandbox', () => {
  let t: TestSandbox;
  let client: PreludeClient;

  beforeAll(async () => {
    t = await startTestSandbox({
      SANDBOX_API_KEY: apiKey,
      SANDBOX_MAX_ATTEMPTS: '2',
      SANDBOX_MAX_CHECKS: '1',
    });
    client = new PreludeClient({ apiKey, baseUrl: t.url, timeoutMs: 2_000 });
  });
  afterAll(() => t.stop());
  // Fault knobs and cooldowns a test turns are put back whether it passed or not.
  afterEach(() => t.reset());

  it('creates, retries and checks, with typed answers and the correlation ID echoed', async () => {
    const target = phoneTarget();
    const created = await client.verification.create({ target, metadata: { correlation_id: 'window-1' } });
    expect(created).toMatchObject({ status: 'success', metadata: { correlation_id: 'window-1' } });
    const retried = await client.verification.create({ target });
    expect(retried).toMatchObject({ status: 'retry', id: created.id });

    const messages = await t.call('GET', `/sandbox/messages?to=${encodeURIComponent(target.value)}`);
    const checked = await client.verification.check({ target, code: messages.body.messages[0].code });
    expect(checked).toMatchObject({ status: 'success', id: created.id });
    expect((await client.verification.check({ target, code: '123456' })).status).toBe('expired_or_not_found');
  });

  it('calls Watch and Notify', async () => {
    const target = phoneTarget();
    expect((await client.watch.predict({ target })).prediction).toBe('legitimate');
    expect(
      (await client.watch.sendFeedbacks({ feedbacks: [{ target, type: 'verification.started' }] })).status,
    ).toBe('success');
    expect(
      (await client.watch.dispatchEvents({ events: [{ target, confidence: 'neutral', label: 'signup' }] }))
        .status,
    ).toBe('success');
    const sent = await client.notify.send({ template_id: 'template_sandbox_verified', to: target.value });
    expect(sent.id).toMatch(/^tx_/);
    const batch = await client.notify.sendBatch({
      template_id: 'template_sandbox_verified',
      to: [target.value],
    });
    expect(batch.success_count).toBe(1);
  });

  it('auth: a wrong key is 401, not retryable, and the error names no key', async () => {
    const wrong = new PreludeClient({ apiKey: 'prl_wrong_key', baseUrl: t.url });
    const error = await failure(wrong.verification.create({ target: phoneTarget() }));
    expect(error).toMatchObject({ kind: 'auth', status: 401, code: 'invalid_api_key', retryable: false });
    expect(error.requestId).toEqual(expect.any(String));
    expect(String(error)).not.toContain('prl_wrong_key');
  });

  it('invalid_request: refused locally before sending, or by Prelude with a 400', async () => {
    const local = await failure(
      client.verification.create({ target: phoneTarget(), options: { code_size: 12 } }),
    );
    expect(local).toMatchObject({ kind: 'invalid_request', retryable: false });
    expect(local.status).toBeUndefined(); // never sent

    const notE164 = await failure(
      client.verification.create({ target: { type: 'phone_number', value: '0612' } }),
    );
    expect(notE164).toMatchObject({ kind: 'invalid_request', status: 400, code: 'invalid_phone_number' });

    const remote = await failure(
      client.notify.send({ template_id: 'template_that_does_not_exist', to: phoneTarget().value }),
    );
    expect(remote).toMatchObject({ kind: 'invalid_request', status: 400, code: 'template_not_found' });
    expectNoKey(remote);
  });

  it('lifecycle: premature_retry, too_many_attempts and too_many_checks keep their codes', async () => {
    const target = phoneTarget();
    await client.verification.create({ target });
    await t.configure({ minRetryDelaySeconds: 30 });
    const premature = await failure(client.verification.create({ target }));
    expect(premature).toMatchObject({
      kind: 'lifecycle',
      code: 'premature_retry',
      status: 429,
      retryable: false,
    });
    await t.configure({ minRetryDelaySeconds: 0 });
    await client.verification.create({ target });
    expect(await failure(client.verification.create({ target }))).toMatchObject({
      code: 'too_many_attempts',
    });

    await client.verification.check({ target, code: '000000' });
    expect(await failure(client.verification.check({ target, code: '000001' }))).toMatchObject({
      kind: 'lifecycle',
      code: 'too_many_checks',
    });
  });

  it('rate_limited: retryable after the delay Prelude asks for', async () => {
    await t.configure({ rateLimitRate: 1 });
    const error = await failure(client.verification.create({ target: phoneTarget() }));
    expect(error).toMatchObject({ kind: 'rate_limited', status: 429, retryable: true, retryAfterMs: 1_000 });
    expectNoKey(error);
  });

  it('server: a 500 is retryable', async () => {
    await t.configure({ errorRate: 1 });
    const error = await failure(client.watch.predict({ target: phoneTarget() }));
    expect(error).toMatchObject({ kind: 'server', status: 500, retryable: true });
    expectNoKey(error);
  });

  it('timeout: no answer within the timeout is retryable', async () => {
    await t.configure({ latencyMs: 1_000 });
    const error = await failure(client.verification.create({ target: phoneTarget() }, { timeoutMs: 200 }));
    expect(error).toMatchObject({ kind: 'timeout', retryable: true });
    expectNoKey(error);
  });

  it('aborted: the caller’s signal stops the call before the answer comes', async () => {
    await t.configure({ latencyMs: 1_000 });
    const controller = new AbortController();
    const aborted = client.verification.create({ target: phoneTarget() }, { signal: controller.signal });
    // The same call, not aborted: its answer comes after the sandbox's latency.
    const answered = client.verification.create({ target: phoneTarget() });
    // Aborted while the sandbox holds both requests (its latency is 1 s).
    setTimeout(() => controller.abort(), 50);
    expect(await settlingOrder({ aborted, answered })).toEqual(['aborted', 'answered']);
    const error = await failure(aborted);
    expect(error).toMatchObject({ kind: 'network', code: 'aborted' });
    expect((await answered).status).toBe('success');
  });

  it('network: an unreachable API is retryable, and the error holds no request', async () => {
    const closed = await fixedServer(200, {});
    await closed.stop();
    const offline = new PreludeClient({ apiKey, baseUrl: closed.url });
    const error = await failure(offline.verification.create({ target: phoneTarget() }));
    expect(error).toMatchObject({ kind: 'network', retryable: true });
    expectNoKey(error);
    expect(Object.keys(error.toJSON()).sort()).toEqual(
      ['code', 'kind', 'message', 'name', 'requestId', 'retryAfterMs', 'status'].sort(),
    );
  });

  it('keeps the key out of the client itself', () => {
    expectNoKey(client);
  });

  it('refuses to be built without a key', () => {
    expect(() => new PreludeClient({ apiKey: '' })).toThrow(PreludeError);
  });
});

describe('PreludeClient and answers from a newer or broken API', () => {
  it('passes unknown statuses, channels and fields through', async () => {
    const server = await fixedServer(200, {
      id: 'vrf_01jc0t6fwwfgfsq1md24mhyztj',
      status: 'quantum_verified',
      method: 'telepathy',
      channels: ['sms', 'pigeon'],
      a_new_field: { nested: 1 },
      request_id: 'req_1',
    });
    try {
      const client = new PreludeClient({ apiKey, baseUrl: server.url });
      const answer = await client.verification.create({ target: phoneTarget() });
      expect(answer).toMatchObject({
        status: 'quantum_verified',
        method: 'telepathy',
        channels: ['sms', 'pigeon'],
        a_new_field: { nested: 1 },
      });
    } finally {
      await server.stop();
    }
  });

  it('turns a malformed 2xx answer into invalid_response, not a crash', async () => {
    const server = await fixedServer(200, { status: 'success' }); // no id
    try {
      const client = new PreludeClient({ apiKey, baseUrl: server.url });
      const error = await failure(client.verification.create({ target: phoneTarget() }));
      expect(error).toMatchObject({ kind: 'invalid_response', status: 200, retryable: false });
    } finally {
      await server.stop();
    }
  });

  it('maps an error that is not JSON by its status, and reads retry-after as an HTTP date', async () => {
    // An hour ahead: an HTTP date has whole seconds, and the delay is read against the clock when
    // the answer arrives, so the bounds leave a minute for a slow machine; an hour is unmistakable.
    const later = new Date(Date.now() + 3_600_000).toUTCString();
    const server = await fixedServer(429, '<html>slow down</html>', { 'retry-after': later });
    try {
      const client = new PreludeClient({ apiKey, baseUrl: server.url });
      const error = await failure(client.watch.predict({ target: phoneTarget() }));
      expect(error).toMatchObject({ kind: 'rate_limited', code: 'http_429' });
      expect(error.retryAfterMs).toBeGreaterThan(3_540_000);
      expect(error.retryAfterMs).toBeLessThanOrEqual(3_600_000);
    } finally {
      await server.stop();
    }
  });
});
