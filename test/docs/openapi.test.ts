/**
 * The OpenAPI document is generated from the routes' own schemas: every route the service serves is in
 * it (but the docs' own), `/openapi.json` serves it, and the check the end-to-end suites run on every
 * answer is shown able to fail.
 */
import type { RouteOptions } from 'fastify';
import { parseKeyRing } from '../../src/codec';
import { offlineService, request } from '../server/offline-service';
import { answerProblems, documentedPath, serviceDocument } from './openapi-conformance';

/** Routes that are not operations of the API: the docs themselves, preflights, HEAD twins. */
const notOperations = (route: RouteOptions) =>
  route.url.startsWith('/docs') ||
  route.url === '/openapi.json' ||
  route.method === 'OPTIONS' ||
  route.method === 'HEAD';

describe('the OpenAPI document', () => {
  it('documents every route the service serves, and only those', async () => {
    const app = offlineService({
      adminToken: 'an-admin-token-for-tests',
      codec: {
        keyRing: parseKeyRing(`k1:${Buffer.alloc(32, 1).toString('base64')}`),
        tokens: [],
        corsOrigins: [],
      },
    });
    const routes: string[] = [];
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) {
        if (!notOperations({ ...route, method } as RouteOptions)) routes.push(`${method} ${route.url}`);
      }
    });
    await app.ready();
    const document = app.swagger() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    await app.close();

    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    expect(document.openapi).toBe('3.1.0');
    expect(documented.sort()).toEqual([...new Set(routes)].sort());
    expect(documented).toEqual(
      expect.arrayContaining([
        'POST /verifications',
        'POST /verifications/check',
        'POST /verifications/forget',
        'GET /verifications/:id',
        'DELETE /verifications/:id',
        'POST /webhooks/prelude',
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
        'POST /codec/encode',
        'POST /codec/decode',
      ]),
    );
  });

  it('gives every operation a summary, a tag and a described JSON answer per status', async () => {
    const document = (await serviceDocument()) as unknown as {
      paths: Record<
        string,
        Record<
          string,
          { summary?: string; tags?: string[]; responses: Record<string, { description?: string }> }
        >
      >;
    };
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        if (path.startsWith('/codec/')) continue;
        expect([method, path, Boolean(operation.summary), operation.tags?.length]).toEqual([
          method,
          path,
          true,
          1,
        ]);
        for (const [status, response] of Object.entries(operation.responses)) {
          expect([path, status, response.description]).toEqual([
            path,
            status,
            expect.not.stringMatching(/^Default/),
          ]);
        }
      }
    }
  });

  it('is what /openapi.json serves', async () => {
    const app = offlineService({ adminToken: 'an-admin-token-for-tests' });
    try {
      const served = await request(app, { method: 'GET', url: '/openapi.json' });
      expect(served.json()).toEqual(JSON.parse(JSON.stringify(await serviceDocument())));
    } finally {
      await app.close();
    }
  });
});

describe('the conformance check the end-to-end suites run', () => {
  const window = {
    id: `verification-${'a'.repeat(32)}`,
    target: { type: 'phone_number', value: '+33•••••••78' },
    status: 'open',
    attempts: [{ number: 1, trigger: 'initial', channel: 'sms', sent_at: '2030-01-01T00:00:00.000Z' }],
    sends_left: 4,
    checks_used: 0,
    checks_left: 5,
    opened_at: '2030-01-01T00:00:00.000Z',
    expires_at: '2030-01-01T00:10:00.000Z',
  };

  it('passes documented answers', async () => {
    expect(await answerProblems('GET', `/verifications/${window.id}`, 200, window)).toEqual([]);
    expect(
      await answerProblems('POST', '/verifications', 429, {
        code: 'premature_retry',
        message: 'wait',
        retry_after_seconds: 12,
      }),
    ).toEqual([]);
    expect(await answerProblems('GET', '/nowhere', 404, { code: 'not_found', message: 'no route' })).toEqual(
      [],
    );
    expect(documentedPath(await serviceDocument(), '/verifications/check?x=1')).toBe('/verifications/check');
  });

  it('fails an undocumented status, an extra or missing field, a wrong type or format', async () => {
    const cases: [string, string, number, unknown][] = [
      ['POST', '/verifications/forget', 429, { code: 'x', message: 'y' }],
      ['GET', `/verifications/${window.id}`, 200, { ...window, target_key: 'leak' }],
      ['GET', `/verifications/${window.id}`, 200, { ...window, checks_left: undefined }],
      ['GET', `/verifications/${window.id}`, 200, { ...window, status: 'lost' }],
      ['GET', `/verifications/${window.id}`, 200, { ...window, opened_at: 'yesterday' }],
      ['POST', '/verifications/check', 400, { code: 'invalid_code' }],
      ['PUT', '/verifications', 200, {}],
    ];
    for (const [method, path, status, body] of cases) {
      expect([method, path, status, (await answerProblems(method, path, status, body)).length]).toEqual([
        method,
        path,
        status,
        1,
      ]);
    }
  });
});
