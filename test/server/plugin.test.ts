/**
 * The routes as a team mounts them: `verificationRoutes` registered under a prefix of the team's own
 * Fastify app, behind the team's own authentication, calling a real worker through the team's
 * Temporal client.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { isSignedWebhookRoute, verificationRoutes } from '../../src/server/plugin';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';
import { request } from './offline-service';

const teamKey = 'the-teams-own-credential';

/** Every route the team's app serves, as `METHOD url`. */
const routes: string[] = [];

/** The team's app: its own auth hook and error answers, and one route of its own. */
async function teamApp(stack: TestStack): Promise<FastifyInstance> {
  const app = Fastify();
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push(`${method} ${route.url}`);
  });
  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) =>
    reply.code(error.statusCode ?? 500).send({ team_error: error.message }),
  );
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (isSignedWebhookRoute(request.routeOptions.config) || request.headers['x-team-key'] === teamKey)
      return;
    throw Object.assign(new Error('the team says no'), { statusCode: 401 });
  });
  app.get('/team/broken', async () => {
    throw new Error('a failure of the team');
  });
  await app.register(verificationRoutes, {
    prefix: '/verify',
    client: stack.client,
    verification: stack.options,
    webhookPublicKey: stack.sandbox.publicKeyPem,
  });
  return app;
}

describe('verificationRoutes mounted in a team’s app', () => {
  let stack: TestStack;
  let app: FastifyInstance;
  const post = (url: string, body: unknown, headers: Record<string, string> = { 'x-team-key': teamKey }) =>
    request(app, {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', ...headers },
      payload: JSON.stringify(body),
    });

  beforeAll(async () => {
    stack = await startStack({ policy: { resendCooldownSeconds: 30 } });
    app = await teamApp(stack);
  });
  afterAll(async () => {
    await app?.close();
    await stack?.stop();
  });

  it('adds the verification and webhook routes under the prefix, and nothing else', () => {
    expect(routes.filter((route) => !route.startsWith('HEAD ')).sort()).toEqual([
      'DELETE /verify/verifications/:id',
      'GET /team/broken',
      'GET /verify/verifications/:id',
      'POST /verify/verifications',
      'POST /verify/verifications/check',
      'POST /verify/verifications/forget',
      'POST /verify/webhooks/prelude',
    ]);
  });

  it('sends a code and checks it under the prefix, behind the team’s credential', async () => {
    const target = uniquePhoneTarget();
    const sent = await post('/verify/verifications', { target });
    expect([sent.statusCode, sent.json()]).toEqual([200, expect.objectContaining({ status: 'success' })]);

    const checked = await post('/verify/verifications/check', {
      target,
      code: await stack.latestCode(target.value),
    });
    expect([checked.statusCode, checked.json()]).toEqual([
      200,
      expect.objectContaining({ status: 'success', id: sent.json().id }),
    ]);
  });

  it('answers its own errors by the error table, and leaves the team’s to the team', async () => {
    const target = uniquePhoneTarget();
    expect((await post('/verify/verifications', { target })).statusCode).toBe(200);
    const resent = await post('/verify/verifications', { target });
    expect([resent.statusCode, resent.json()]).toEqual([
      429,
      { code: 'premature_retry', message: expect.any(String), retry_after_seconds: expect.any(Number) },
    ]);
    expect(Number(resent.headers['retry-after'])).toBeGreaterThan(0);
    expect((await post('/verify/verifications', { target: { type: 'phone_number' } })).json()).toMatchObject({
      code: 'invalid_request',
    });

    const refused = await post('/verify/verifications', { target }, {});
    expect([refused.statusCode, refused.json()]).toEqual([401, { team_error: 'the team says no' }]);
    const teamRoute = await request(app, {
      method: 'GET',
      url: '/team/broken',
      headers: { 'x-team-key': teamKey },
    });
    expect([teamRoute.statusCode, teamRoute.json()]).toEqual([500, { team_error: 'a failure of the team' }]);
  });

  it('lets Prelude’s webhooks through the team’s auth, to be refused unless signed', async () => {
    const unsigned = await post(
      '/verify/webhooks/prelude',
      { id: 'evt_1', type: 'verify.authentication' },
      {},
    );
    expect([unsigned.statusCode, unsigned.json()]).toEqual([
      401,
      { code: 'invalid_signature', message: expect.any(String) },
    ]);
  });
});
