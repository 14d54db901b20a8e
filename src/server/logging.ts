/**
 * The service's structured logs (pino, Fastify's logger): one JSON line per event, every line about a
 * request carrying its request ID (also sent back as `X-Request-Id`) and, once known, its window's
 * opaque ID. Nothing a caller sent is logged: not the URL as sent (a mistaken path or query may hold
 * a phone number), no header (tokens, signatures, idempotency keys), no body.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyError, FastifyRequest, FastifyServerOptions } from 'fastify';

/** A fresh request ID (not the caller's: a header could carry anything into the logs). */
export function newRequestId(): string {
  return randomBytes(9).toString('base64url');
}

/** An error as logged: what it is and where it came from, never the request it may carry. */
function errorLog(error: FastifyError) {
  return {
    type: error.name,
    message: error.message,
    ...(typeof error.code === 'string' ? { code: error.code } : {}),
    stack: error.stack ?? '',
  };
}

/** Fastify's logger options. */
export const loggerOptions = {
  serializers: {
    req: (request: FastifyRequest) => ({
      method: request.method,
      route: request.routeOptions?.url ?? '(no route)',
    }),
    err: errorLog,
  },
  // Whatever a handler might pass by mistake never reaches a line.
  redact: {
    paths: [
      'req.headers',
      'req.body',
      'req.url',
      'headers',
      'body',
      'authorization',
      'target',
      'code',
      '*.headers',
      '*.body',
      '*.target',
      '*.authorization',
    ],
    censor: '[redacted]',
  },
} satisfies FastifyServerOptions['logger'];
