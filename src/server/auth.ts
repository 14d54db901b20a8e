import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './errors';

/**
 * A preHandler that lets through only requests bearing the service token. Compared in constant
 * time; the token itself never reaches a log or an answer.
 */
export function requireBearer(token: string | undefined) {
  const expected = token ? Buffer.from(token) : undefined;
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!expected) return;
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
    const given = match ? Buffer.from(match[1] ?? '') : Buffer.alloc(0);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return sendError(reply, 401, 'unauthorized', 'a valid bearer token is required');
    }
  };
}
