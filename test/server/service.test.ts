/**
 * The HTTP service's face, without Temporal: requests refused by the routes' schemas get the service's
 * error codes in the same order as before, the bearer token is checked before any body is read, CORS
 * lets only the configured origins in, every answer carries a request ID, logs carry it on every line
 * and nothing a caller sent, and `/metrics` counts requests by route without ever naming a URL.
 */
import { offlineService, request } from './offline-service';

const target = { type: 'phone_number', value: '+33612345678' };
const json = (body: unknown) => ({
  headers: { 'content-type': 'application/json' },
  payload: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('requests the schemas refuse', () => {
  const app = offlineService();
  afterAll(() => app.close());

  it('answers a malformed body 400 invalid_request, naming the first problem', async () => {
    const missing = await request(app, { method: 'POST', url: '/verifications', ...json({ target: {} }) });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toEqual({
      code: 'invalid_request',
      message: expect.stringMatching(/^target\.type: /),
    });
    const notObject = await request(app, { method: 'POST', url: '/verifications/check', ...json('null') });
    expect(notObject.json()).toEqual({ code: 'invalid_request', message: expect.stringMatching(/^body: /) });
    const notJson = await request(app, { method: 'POST', url: '/verifications', ...json('{"target":') });
    expect(notJson.json()).toMatchObject({ code: 'invalid_request' });
  });

  it('refuses options the operator has not allowed with override_not_allowed, after the shape and before the key', async () => {
    const refused = await request(app, {
      method: 'POST',
      url: '/verifications',
      ...json({ target, policy: { maxChecks: 9 }, options: { custom_code: '1234', locale: 'fr-FR' } }),
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual({
      code: 'override_not_allowed',
      message: expect.stringContaining('policy.maxChecks, options.custom_code'),
    });
    const withBadKey = await request(app, {
      method: 'POST',
      url: '/verifications',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'has space' },
      payload: JSON.stringify({ target, policy: { maxChecks: 9 } }),
    });
    expect(withBadKey.json()).toMatchObject({ code: 'override_not_allowed' });
    const malformedAndBadKey = await request(app, {
      method: 'POST',
      url: '/verifications',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'has space' },
      payload: JSON.stringify({ target: {} }),
    });
    expect(malformedAndBadKey.json()).toMatchObject({ code: 'invalid_request' });
  });

  it('answers a malformed Idempotency-Key 400 invalid_idempotency_key', async () => {
    for (const key of ['', 'has space', 'x'.repeat(256), 'semi;colon']) {
      const answer = await request(app, {
        method: 'POST',
        url: '/verifications/check',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        payload: JSON.stringify({ target, code: '123456' }),
      });
      expect([key, answer.statusCode, answer.json().code]).toEqual([key, 400, 'invalid_idempotency_key']);
    }
  });

  it('answers a path that is not a window ID 404 not_found, and an unknown path without echoing it', async () => {
    for (const method of ['GET', 'DELETE'] as const) {
      const answer = await request(app, { method, url: '/verifications/target-limits-abc' });
      expect(answer.statusCode).toBe(404);
      expect(answer.json()).toEqual({ code: 'not_found', message: 'no such window' });
    }
    const unknown = await request(app, { method: 'GET', url: '/%2B33612345678?to=%2B33612345678' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).not.toContain('612345678');
  });

  it('refuses a malformed code before any workflow is asked', async () => {
    const answer = await request(app, {
      method: 'POST',
      url: '/verifications/check',
      ...json({ target, code: '!' }),
    });
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'invalid_code' });
  });
});

describe('bearer token', () => {
  const token = 'a-long-enough-test-token';
  const app = offlineService({ apiToken: token, bodyLimitBytes: 1_024 });
  afterAll(() => app.close());

  it('is checked before the body is read: no token is 401 whatever the body', async () => {
    const bodies = [
      {
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ pad: 'x'.repeat(5_000) }),
      },
      { headers: { 'content-type': 'application/json' }, payload: '{"target":' },
      { headers: { 'content-type': 'text/plain' }, payload: 'hello' },
    ];
    for (const body of bodies) {
      const answer = await request(app, { method: 'POST', url: '/verifications', ...body });
      expect(answer.statusCode).toBe(401);
      expect(answer.json()).toEqual({ code: 'unauthorized', message: expect.any(String) });
    }
    const withToken = await request(app, {
      method: 'POST',
      url: '/verifications',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      payload: '{"target":',
    });
    expect(withToken.statusCode).toBe(400);
  });

  it('is not asked of health, docs, the document and webhooks (signed instead)', async () => {
    for (const url of ['/healthz', '/docs', '/openapi.json']) {
      expect((await request(app, { method: 'GET', url })).statusCode).toBe(200);
    }
    const webhook = await request(app, { method: 'POST', url: '/webhooks/prelude', ...json({}) });
    expect(webhook.statusCode).not.toBe(401);
  });
});

describe('CORS', () => {
  const origin = 'https://app.example.com';

  it('lets the configured origins in, preflight included, without a token', async () => {
    const app = offlineService({ apiToken: 'a-long-enough-test-token', corsOrigins: [origin] });
    try {
      const preflight = await request(app, {
        method: 'OPTIONS',
        url: '/verifications',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, idempotency-key',
        },
      });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(origin);
      expect(preflight.headers['access-control-allow-headers']).toContain('idempotency-key');
      const refused = await request(app, { method: 'POST', url: '/verifications', headers: { origin } });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['access-control-allow-origin']).toBe(origin);
      expect(refused.headers['access-control-expose-headers']).toContain('retry-after');

      const stranger = await request(app, {
        method: 'OPTIONS',
        url: '/verifications',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it('lets no browser in by default: a preflight is an unknown route', async () => {
    const app = offlineService();
    try {
      const preflight = await request(app, {
        method: 'OPTIONS',
        url: '/verifications',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      expect(preflight.statusCode).toBe(404);
      expect(preflight.json()).toMatchObject({ code: 'not_found' });
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await app.close();
    }
  });
});

describe('request IDs and logs', () => {
  it('gives every answer a request ID of its own and logs it on every line, with nothing a caller sent', async () => {
    const lines: string[] = [];
    const token = 'a-long-enough-test-token';
    const app = offlineService({
      logger: true,
      logStream: { write: (line) => lines.push(line) },
      apiToken: token,
    });
    try {
      const phone = '+33698765432';
      // Long enough that no random 12-character request ID contains them by chance.
      const idempotencyKey = 'caller-key-7f3a9c4e';
      const code = 'ZQ7XW9QJ';
      const answers = [
        await request(app, {
          method: 'GET',
          url: `/verifications/verification-${encodeURIComponent(phone)}?to=${encodeURIComponent(phone)}`,
          headers: { authorization: `Bearer ${token}`, 'x-request-id': phone },
        }),
        await request(app, {
          method: 'POST',
          url: '/verifications/check',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${token}`,
            'idempotency-key': idempotencyKey,
          },
          payload: JSON.stringify({ target: { type: 'phone_number', value: phone }, code }),
        }),
        await request(app, { method: 'GET', url: `/${encodeURIComponent(phone)}` }),
      ];
      const ids = answers.map((answer) => answer.headers['x-request-id']);
      expect(ids.every((id) => typeof id === 'string' && /^[\w-]{12}$/.test(id))).toBe(true);
      expect(new Set(ids).size).toBe(3);

      // Every line but the service's own "listening" one is about a request.
      const parsed = lines
        .map((line) => JSON.parse(line) as { reqId?: string; req?: { route: string }; msg: string })
        .filter((line) => !line.msg.startsWith('Server listening'));
      expect(parsed.length).toBeGreaterThanOrEqual(6);
      expect(parsed.every((line) => ids.includes(line.reqId))).toBe(true);
      expect(parsed.filter((line) => line.req).map((line) => line.req!.route)).toEqual([
        '/verifications/:id',
        '/verifications/check',
        '(no route)',
      ]);
      const text = lines.join('\n');
      for (const secret of [phone.slice(3), token, code, idempotencyKey, 'x-request-id'])
        expect(text).not.toContain(secret);
    } finally {
      await app.close();
    }
  });
});

describe('/metrics on the service', () => {
  it('counts requests by declared route and status, never by the URL as sent', async () => {
    const app = offlineService();
    try {
      await request(app, { method: 'POST', url: '/verifications', ...json({ target: {} }) });
      await request(app, { method: 'GET', url: '/verifications/%2B33612345678' });
      await request(app, { method: 'GET', url: '/%2B33612345678' });
      const page = await request(app, { method: 'GET', url: '/metrics' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/plain/);
      expect(page.body).toContain(
        'prelude_temporal_http_requests_total{method="POST",route="/verifications",status="400"} 1',
      );
      expect(page.body).toContain(
        'prelude_temporal_http_requests_total{method="GET",route="/verifications/:id",status="404"} 1',
      );
      expect(page.body).toContain(
        'prelude_temporal_http_requests_total{method="GET",route="unmatched",status="404"} 1',
      );
      expect(page.body).toMatch(/prelude_temporal_http_request_duration_seconds_bucket\{/);
      expect(page.body).not.toContain('612345678');
    } finally {
      await app.close();
    }
  });

  it('asks for METRICS_TOKEN when one is set', async () => {
    const metricsToken = 'a-long-enough-metrics-token';
    const app = offlineService({ metricsToken, apiToken: 'a-long-enough-test-token' });
    try {
      const anonymous = await request(app, { method: 'GET', url: '/metrics' });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json()).toMatchObject({ code: 'unauthorized' });
      const apiToken = await request(app, {
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer a-long-enough-test-token' },
      });
      expect(apiToken.statusCode).toBe(401);
      const scraper = await request(app, {
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${metricsToken}` },
      });
      expect(scraper.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
