import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ServiceError } from './errors';
import { errorAnswers } from './schemas';
import { isSignedWebhookRoute } from './webhooks';

/**
 * Whether an `Authorization` header bears one of the tokens. Compared in constant time; more than one
 * token is accepted so that a credential can rotate without a gap.
 */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  const given = Buffer.from(match?.[1] ?? '');
  let found = false;
  for (const token of tokens) {
    const expected = Buffer.from(token);
    // Every token is compared, so the time taken does not say which one (if any) matched.
    if (given.length === expected.length && timingSafeEqual(given, expected)) found = true;
  }
  return found;
}

/**
 * Puts every route registered in `scope` from here on behind one of the tokens (none configured: all
 * pass, which the service allows only on loopback), but the webhook route, which Prelude's
 * signature authenticates. The check is an onRequest hook: it runs before the body is read, so an
 * unauthenticated caller cannot make the service parse anything. The tokens never reach a log or
 * an answer. Each route's schema gets the 401 answer, so the OpenAPI document shows it where it is
 * given.
 */
export function requireBearer(scope: FastifyInstance, tokens: readonly string[]): void {
  scope.addHook('onRoute', (route) => {
    if (isSignedWebhookRoute(route.config)) return;
    route.schema = { ...route.schema, response: { ...(route.schema?.response as object), ...unauthorized } };
  });
  scope.addHook('onRequest', async (request) => {
    if (tokens.length === 0 || isSignedWebhookRoute(request.routeOptions.config)) return;
    if (!bearerMatches(request.headers.authorization, tokens)) {
      throw new ServiceError('unauthorized', 'a valid bearer token is required');
    }
  });
}

/** The answer {@link requireBearer} gives, as a route's schema declares it. */
const unauthorized = { 401: errorAnswers('unauthorized')[401] };
