import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ServiceError } from './errors';
import { isSignedWebhook } from './webhooks';

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
 * An onRequest hook that lets through only requests bearing one of the tokens (none configured: all
 * pass, which the service allows only on loopback; the webhook route is authenticated by its
 * signature). It runs before the body is read, so an
 * unauthenticated caller cannot make the service parse anything. The tokens never reach a log or an
 * answer.
 */
export function requireBearer(tokens: readonly string[]) {
  return async (request: FastifyRequest) => {
    if (tokens.length === 0 || isSignedWebhook(request)) return;
    if (!bearerMatches(request.headers.authorization, tokens)) {
      throw new ServiceError('unauthorized', 'a valid bearer token is required');
    }
  };
}
