/**
 * Every PreludeError kind from a real HTTP exchange (the sandbox with its fault knobs, or a tiny
 * server for answers the sandbox never gives): kind, status, code, requestId, retryAfterMs and
 * retryable as a caller (a Temporal activity) decides on them.
 */
import { PreludeClient, PreludeError } from '../../src/prelude';
import { settlingOrder } from '../support/settling';
import {
  apiKey,
  closedPortUrl,
  failure,
  phoneTarget,
  startFixedServer,
  startServer,
  startTestSandbox,
  thrown,
  type TestSandbox,
  type TestServer,
} from './support';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('errors from the sandbox', () => {
  let t: TestSandbox;
  let client: PreludeClient;

  beforeAll(async () => {
    t = await startTestSandbox();
    client = t.client();
  });
  afterAll(() => t.stop());
  // Lifecycle limits and latency a test turns are put back whether it passed or not.
  afterEach(() => t.reset());

  it('auth: a wrong key is a 401 with Prelude’s code and request ID, not retryable', async () => {
    const wrong = t.client({ apiKey: 'prl_sk_not_the_right_one' });
    const error = await failure(wrong.verification.create({ target: phoneTarget() }));
    expect(error).toMatchObject({
      kind: 'auth',
      status: 401,
      code: 'invalid_api_key',
      retryable: false,
      requestId: expect.stringMatching(uuid),
    });
    expect(error.message).toMatch(/api key/i);
  });

  it('auth: no key at all is refused when the client is built', () => {
    expect(thrown(() => new PreludeClient({ apiKey: '', baseUrl: t.url }))).toMatchObject({
      kind: 'auth',
      code: 'missing_api_key',
      retryable: false,
    });
  });

  it('invalid_request: Prelude’s 400 keeps its code and request ID', async () => {
    const notE164 = await failure(
      client.verification.create({ target: { type: 'phone_number', value: '0612345678' } }),
    );
    expect(notE164).toMatchObject({
      kind: 'invalid_request',
      status: 400,
      code: 'invalid_phone_number',
      retryable: false,
      requestId: expect.stringMatching(uuid),
    });

    const badCheck = await failure(
      client.verification.check({ target: { type: 'email_address', value: 'nobody' }, code: '1234' }),
    );
    expect(badCheck).toMatchObject({ kind: 'invalid_request', status: 400, code: 'invalid_email_address' });

    const unknownTemplate = await failure(
      client.notify.send({ template_id: 'template_nope', to: phoneTarget().value }),
    );
    expect(unknownTemplate).toMatchObject({
      kind: 'invalid_request',
      status: 400,
      code: 'template_not_found',
    });

    const variables = await failure(
      client.notify.send({ template_id: 'template_sandbox_order_shipped', to: phoneTarget().value }),
    );
    expect(variables).toMatchObject({ status: 400, code: 'invalid_template_variables' });

    const past = await failure(
      client.notify.send({
        template_id: 'template_sandbox_verified',
        to: phoneTarget().value,
        expires_at: new Date(Date.now() - 60_000).toISOString(),
      }),
    );
    expect(past).toMatchObject({ status: 400, code: 'expires_at_in_past', retryable: false });
  });

  it('lifecycle: premature_retry is a 429 with the delay Prelude asks for, not retryable', async () => {
    const target = phoneTarget();
    await client.verification.create({ target });
    await t.configure({ minRetryDelaySeconds: 30 });
    const error = await failure(client.verification.create({ target }));
    expect(error).toMatchObject({
      kind: 'lifecycle',
      code: 'premature_retry',
      status: 429,
      retryable: false,
      requestId: expect.stringMatching(uuid),
    });
    expect(error.retryAfterMs).toBeGreaterThan(28_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(await t.messages(target.value)).toHaveLength(1); // refused: nothing sent
  });

  it('lifecycle: too_many_attempts once the window’s attempts are spent', async () => {
    await t.configure({ maxAttempts: 2 });
    const target = phoneTarget();
    await client.verification.create({ target });
    await client.verification.create({ target });
    const error = await failure(client.verification.create({ target }));
    expect(error).toMatchObject({
      kind: 'lifecycle',
      code: 'too_many_attempts',
      status: 429,
      retryable: false,
      requestId: expect.stringMatching(uuid),
    });
  });

  it('lifecycle: too_many_checks once the window’s checks are spent, even for the right code', async () => {
    await t.configure({ maxChecks: 2 });
    const target = phoneTarget();
    await client.verification.create({ target });
    const code = await t.latestCode(target.value);
    const wrong = code === '000000' ? '111111' : '000000';
    expect((await client.verification.check({ target, code: wrong })).status).toBe('failure');
    expect((await client.verification.check({ target, code: wrong })).status).toBe('failure');
    const error = await failure(client.verification.check({ target, code }));
    expect(error).toMatchObject({
      kind: 'lifecycle',
      code: 'too_many_checks',
      status: 429,
      retryable: false,
      requestId: expect.stringMatching(uuid),
    });
  });

  it('timeout: a per-call timeoutMs overrides the client’s', async () => {
    await t.configure({ latencyMs: 800 });
    // The client's own timeout (3 s) outlasts the latency: only the per-call one can end the call.
    const timedOut = client.watch.predict({ target: phoneTarget() }, { timeoutMs: 150 });
    const answered = client.watch.predict({ target: phoneTarget() });
    expect(await settlingOrder({ timedOut, answered })).toEqual(['timedOut', 'answered']);
    expect(await failure(timedOut)).toMatchObject({ kind: 'timeout', code: 'timeout', retryable: true });
    expect((await answered).prediction).toBe('legitimate');
  });

  it('aborted: the caller’s signal ends the call at once', async () => {
    await t.configure({ latencyMs: 800 });
    const controller = new AbortController();
    const aborted = client.verification.create({ target: phoneTarget() }, { signal: controller.signal });
    const answered = client.verification.create({ target: phoneTarget() });
    setTimeout(() => controller.abort(), 50);
    // Ended by the abort, before the twin call that was not aborted got its answer.
    expect(await settlingOrder({ aborted, answered })).toEqual(['aborted', 'answered']);
    const error = await failure(aborted);
    expect(error).toMatchObject({ kind: 'network', code: 'aborted', retryable: true });
    expect(error.status).toBeUndefined();
    expect((await answered).status).toBe('success');
  });
});

describe('errors from the sandbox’s fault knobs', () => {
  it('rate_limited (SANDBOX_RATE_LIMIT_RATE=1): retryable after retry-after', async () => {
    const t = await startTestSandbox({ SANDBOX_RATE_LIMIT_RATE: '1' });
    try {
      const error = await failure(t.client().verification.create({ target: phoneTarget() }));
      expect(error).toMatchObject({
        kind: 'rate_limited',
        status: 429,
        code: 'rate_limited',
        retryable: true,
        retryAfterMs: 1_000,
        requestId: expect.stringMatching(uuid),
      });
    } finally {
      await t.stop();
    }
  });

  it('server (SANDBOX_ERROR_RATE=1): a 500 is retryable', async () => {
    const t = await startTestSandbox({ SANDBOX_ERROR_RATE: '1' });
    try {
      const error = await failure(
        t.client().notify.send({ template_id: 'template_sandbox_verified', to: '+33612345678' }),
      );
      expect(error).toMatchObject({
        kind: 'server',
        status: 500,
        code: 'internal',
        retryable: true,
        requestId: expect.stringMatching(uuid),
      });
      expect(error.retryAfterMs).toBeUndefined();
    } finally {
      await t.stop();
    }
  });

  it('timeout (SANDBOX_LATENCY_MS above the client’s timeoutMs): retryable, and on time', async () => {
    const t = await startTestSandbox({ SANDBOX_LATENCY_MS: '1000' });
    try {
      const timedOut = t.client({ timeoutMs: 200 }).verification.create({ target: phoneTarget() });
      // On time: it ends before a client with a longer timeout gets the sandbox's late answer.
      const answered = t.client({ timeoutMs: 5_000 }).verification.create({ target: phoneTarget() });
      expect(await settlingOrder({ timedOut, answered })).toEqual(['timedOut', 'answered']);
      const error = await failure(timedOut);
      expect(error).toMatchObject({ kind: 'timeout', code: 'timeout', retryable: true });
      expect(error.status).toBeUndefined();
      expect((await answered).status).toBe('success');
    } finally {
      await t.stop();
    }
  });
});

describe('errors without the sandbox', () => {
  const servers: TestServer[] = [];
  const serve = async (server: Promise<TestServer>) => {
    servers.push(await server);
    return servers.at(-1)!;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  it('network: a closed port is retryable, with no status', async () => {
    const client = new PreludeClient({ apiKey, baseUrl: await closedPortUrl(), timeoutMs: 2_000 });
    const error = await failure(client.verification.check({ target: phoneTarget(), code: '1234' }));
    expect(error).toMatchObject({ kind: 'network', code: 'network_error', retryable: true });
    expect(error.status).toBeUndefined();
    expect(error.requestId).toBeUndefined();
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('network: a connection cut in the middle of the answer is retryable', async () => {
    const server = await serve(
      startServer((_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' });
        response.write('{"id":"vrf_');
        setTimeout(() => response.destroy(), 20);
      }),
    );
    const client = new PreludeClient({ apiKey, baseUrl: server.url, timeoutMs: 2_000 });
    expect(await failure(client.verification.create({ target: phoneTarget() }))).toMatchObject({
      kind: 'network',
      retryable: true,
    });
  });

  it('invalid_request: refused before sending, with the field at fault', async () => {
    const server = await serve(startFixedServer(200, {}));
    const client = new PreludeClient({ apiKey, baseUrl: server.url });
    const target = phoneTarget();
    const cases: [Promise<unknown>, RegExp][] = [
      [client.verification.create({ target, options: { code_size: 12 } }), /options\.code_size/],
      [client.verification.create({ target, options: { code_size: 3 } }), /options\.code_size/],
      [client.verification.create({ target, options: { code_size: 6, custom_code: '1234' } }), /custom_code/],
      [
        client.verification.create({ target, metadata: { correlation_id: 'x'.repeat(81) } }),
        /correlation_id/,
      ],
      [client.verification.create({ target, dispatch_id: 'short' }), /dispatch_id/],
      [client.verification.check({ target, code: '' }), /code/],
      [client.watch.sendFeedbacks({ feedbacks: [] }), /feedbacks/],
      [
        client.watch.dispatchEvents({
          events: Array.from({ length: 101 }, () => ({ target, label: 'x', confidence: 'low' as const })),
        }),
        /events/,
      ],
      [client.notify.send({ template_id: 'template_sandbox_verified', to: '0612345678' }), /E\.164/],
      [client.notify.sendBatch({ template_id: 'template_sandbox_verified', to: [] }), /to/],
    ];
    for (const [call, field] of cases) {
      const error = await failure(call);
      expect(error).toMatchObject({ kind: 'invalid_request', code: 'invalid_request', retryable: false });
      expect(error.status).toBeUndefined();
      expect(error.message).toMatch(field);
    }
    expect(server.received).toHaveLength(0);
  });

  it('aborted: a signal aborted before the call sends nothing', async () => {
    const server = await serve(startFixedServer(200, { id: 'prd_1', prediction: 'legitimate' }));
    const client = new PreludeClient({ apiKey, baseUrl: server.url });
    const error = await failure(
      client.watch.predict({ target: phoneTarget() }, { signal: AbortSignal.abort() }),
    );
    expect(error).toMatchObject({ kind: 'network', code: 'aborted' });
    expect(server.received).toHaveLength(0);
  });

  it('timeout: the timeout covers the whole answer, not only a silent socket', async () => {
    // Headers at once, then the body a byte at a time: the socket is never idle.
    const trickling = await serve(
      startServer((_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write('{"id":"vrf_1"');
        const timer = setInterval(() => response.write(' '), 30);
        response.on('close', () => clearInterval(timer));
      }),
    );
    const client = new PreludeClient({ apiKey, baseUrl: trickling.url, timeoutMs: 300 });
    const started = Date.now();
    const error = await failure(client.verification.create({ target: phoneTarget() }));
    // The server never finishes, so only the client's deadline can end the call (a transport
    // timeout would never fire: the socket is never idle). The bound is generous (a shared machine)
    // and only catches a deadline many times longer than asked.
    expect(error).toMatchObject({ kind: 'timeout', code: 'timeout', retryable: true });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('timeout: headers then silence is a timeout, not a network error', async () => {
    const stalled = await serve(
      startServer((_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write('{"id":');
      }),
    );
    const client = new PreludeClient({ apiKey, baseUrl: stalled.url, timeoutMs: 200 });
    expect(await failure(client.verification.create({ target: phoneTarget() }))).toMatchObject({
      kind: 'timeout',
      code: 'timeout',
    });
  });

  it('maps statuses the sandbox never sends: 403 auth, 404 invalid_request, 503 server', async () => {
    for (const [status, kind, retryable] of [
      [403, 'auth', false],
      [404, 'invalid_request', false],
      [409, 'invalid_request', false],
      [502, 'server', true],
      [503, 'server', true],
    ] as const) {
      const server = await serve(
        startFixedServer(status, {
          code: `code_${status}`,
          message: `message ${status}`,
          type: 'x',
          request_id: 'req-1',
        }),
      );
      const error = await failure(
        new PreludeClient({ apiKey, baseUrl: server.url }).watch.predict({ target: phoneTarget() }),
      );
      expect(error).toMatchObject({
        kind,
        status,
        retryable,
        code: `code_${status}`,
        message: `message ${status}`,
        requestId: 'req-1',
      });
    }
  });

  it('an error body that is not Prelude’s: the status decides, no request ID is invented', async () => {
    for (const [status, kind] of [
      [503, 'server'],
      [429, 'rate_limited'],
    ] as const) {
      const server = await serve(
        startFixedServer(status, `<html>HTTP ${status}</html>`, { 'content-type': 'text/html' }),
      );
      const error = await failure(
        new PreludeClient({ apiKey, baseUrl: server.url }).watch.predict({ target: phoneTarget() }),
      );
      expect(error).toMatchObject({ kind, status, code: `http_${status}`, retryable: true });
      expect(error.message).toBe(`Prelude answered HTTP ${status}`);
      expect(error.requestId).toBeUndefined();
    }
  });

  it('reads retry-after-ms, retry-after in seconds and as an HTTP date, and none', async () => {
    const body = { code: 'rate_limited', message: 'slow down', type: 'too_many_requests' };
    const cases: [Record<string, string>, (ms: number | undefined) => void][] = [
      [{ 'retry-after-ms': '1500' }, (ms) => expect(ms).toBe(1_500)],
      [{ 'retry-after': '7' }, (ms) => expect(ms).toBe(7_000)],
      [
        // An hour ahead, in whole seconds, read against the clock when the answer arrives: a minute
        // of slack for a slow machine.
        { 'retry-after': new Date(Date.now() + 3_600_000).toUTCString() },
        (ms) => {
          expect(ms).toBeGreaterThan(3_540_000);
          expect(ms).toBeLessThanOrEqual(3_600_000);
        },
      ],
      [{}, (ms) => expect(ms).toBeUndefined()],
    ];
    for (const [headers, check] of cases) {
      const server = await serve(startFixedServer(429, body, headers));
      const error = await failure(
        new PreludeClient({ apiKey, baseUrl: server.url }).watch.predict({ target: phoneTarget() }),
      );
      expect(error).toMatchObject({ kind: 'rate_limited', retryable: true });
      check(error.retryAfterMs);
    }
  });

  it('invalid_response: a redirect is not followed, so the key goes nowhere the configuration did not name', async () => {
    const elsewhere = await serve(
      startFixedServer(200, { id: 'vrf_1', status: 'success', method: 'message' }),
    );
    for (const status of [301, 307, 308]) {
      const redirecting = await serve(
        startServer((_request, response) => {
          response.writeHead(status, { location: `${elsewhere.url}/v2/verification` });
          response.end();
        }),
      );
      const error = await failure(
        new PreludeClient({ apiKey, baseUrl: redirecting.url }).verification.create({
          target: phoneTarget(),
        }),
      );
      expect(error).toMatchObject({
        kind: 'invalid_response',
        status,
        code: `http_${status}`,
        retryable: false,
      });
      expect(error.message).toMatch(/redirect.*PRELUDE_BASE_URL/);
      expect(redirecting.received).toHaveLength(1);
    }
    expect(elsewhere.received).toHaveLength(0);
  });

  it('invalid_response: an answer larger than any of Prelude’s is not “unreachable”', async () => {
    const server = await serve(
      startFixedServer(200, {
        id: 'vrf_1',
        status: 'success',
        method: 'message',
        padding: 'x'.repeat(2 << 20),
      }),
    );
    const error = await failure(
      new PreludeClient({ apiKey, baseUrl: server.url }).verification.create({ target: phoneTarget() }),
    );
    expect(error).toMatchObject({ kind: 'invalid_response', retryable: false });
    expect(error.message).not.toMatch(/could not be reached/);
  });

  it('is a real Error subclass, serialised without what it must not carry', async () => {
    const error = await failure(
      new PreludeClient({ apiKey, baseUrl: await closedPortUrl() }).watch.predict({ target: phoneTarget() }),
    );
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('PreludeError');
    expect(String(error)).toMatch(/^PreludeError: /);
    expect(Object.keys(error.toJSON()).sort()).toEqual(
      ['code', 'kind', 'message', 'name', 'requestId', 'retryAfterMs', 'status'].sort(),
    );
    expect(error).not.toHaveProperty('cause');
    expect(error).not.toHaveProperty('config');
    expect(error).not.toHaveProperty('request');
    expect(new PreludeError({ kind: 'server', code: 'x', message: 'y' }).retryable).toBe(true);
  });
});
