/**
 * The HTTP service: verifications for backend code, Prelude's webhooks, health, the OpenAPI
 * document, and the payload codec endpoints for the Temporal Web UI.
 */
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { VerificationClientOptions } from '../client';
import { codecServerRoutes, type CodecServerOptions } from '../codec';
import { requireBearer } from './auth';
import { sendError } from './errors';
import { healthRoutes } from './health';
import { openApiRoutes } from './openapi';
import { verificationRoutes } from './verifications';
import { webhookRoutes } from './webhooks';

export { maskTarget } from './masking';

/** What the service needs. */
export interface ServerOptions {
  client: Client;
  verification: VerificationClientOptions;
  /** Bearer token every route but the webhook, health and docs routes requires. */
  apiToken?: string;
  /** Start fields a caller may set beyond the safe ones (`SERVICE_ALLOW_OVERRIDES`; `*`: all). */
  allowOverrides?: readonly string[];
  /** PEM public key webhooks are verified with. */
  webhookPublicKey?: string;
  bodyLimitBytes: number;
  /** The Web UI's codec endpoints, behind their own credential; absent: not served. */
  codec?: CodecServerOptions;
  /** Request logging (JSON lines on stdout), with personal data and credentials left out. */
  logger?: boolean;
}

/**
 * Request logs name the route, never the URL as sent (a mistaken path or query may hold a phone
 * number), and carry no headers (tokens, signatures, idempotency keys) and no bodies.
 */
const requestLogOptions = {
  serializers: {
    req: (request: FastifyRequest) => ({
      method: request.method,
      route: request.routeOptions?.url ?? '(no route)',
    }),
  },
};

/** Builds (does not start) the service. */
export function buildServer(options: ServerOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ? requestLogOptions : false,
    bodyLimit: options.bodyLimitBytes,
    // Window IDs in plaintext mode hold an e-mail address (up to 320 characters).
    maxParamLength: 400,
    // Errors of the router itself, in the service's shape, never echoing the URL (it may hold a
    // phone number a caller put there by mistake).
    frameworkErrors: (error, _request, reply) =>
      error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? sendError(reply, 404, 'not_found', 'no such resource')
        : sendError(reply, 400, 'invalid_request', 'malformed URL'),
    // Requests Node refuses before any route runs (oversized headers, a control character in one,
    // an unknown method) get the same JSON shape, then the connection is closed.
    clientErrorHandler: (error: Error & { code?: string }, socket) => {
      const [status, reason] =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large']
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? [408, 'Request Timeout']
            : [400, 'Bad Request'];
      const body = JSON.stringify({
        code: status === 431 ? 'headers_too_large' : 'invalid_request',
        message: reason,
      });
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    },
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.statusCode && error.statusCode < 500) {
      const code =
        error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? 'payload_too_large'
          : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
            ? 'unsupported_media_type'
            : 'invalid_request';
      return sendError(reply, error.statusCode, code, error.message);
    }
    request.log.error({ err: error }, 'request failed');
    return sendError(reply, 500, 'internal', 'internal error');
  });
  app.setNotFoundHandler((request, reply) =>
    // The path is not echoed: it may be a caller's mistake holding a phone number.
    sendError(reply, 404, 'not_found', `no route for ${request.method} at this path`),
  );

  void app.register(healthRoutes, { client: options.client });
  void app.register(openApiRoutes);
  void app.register(webhookRoutes, {
    client: options.client,
    taskQueue: options.verification.taskQueue,
    publicKey: options.webhookPublicKey,
    bodyLimitBytes: options.bodyLimitBytes,
  });
  void app.register(async (scope) => {
    scope.addHook('onRequest', requireBearer(options.apiToken ? [options.apiToken] : []));
    await scope.register(verificationRoutes, {
      client: options.client,
      options: options.verification,
      allowOverrides: options.allowOverrides,
    });
  });
  if (options.codec) void app.register(codecServerRoutes, options.codec);
  return app;
}

/** Loopback addresses: the only ones the service listens on without a token. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Starts the service on `host:port`; refuses a non-loopback address without a token. */
export async function startServer(
  options: ServerOptions & { host: string; port: number },
): Promise<{ app: FastifyInstance; url: string }> {
  if (!options.apiToken && !isLoopback(options.host)) {
    throw new Error(
      `refusing to listen on ${options.host} without SERVICE_API_TOKEN: anyone could send codes through it`,
    );
  }
  const app = buildServer(options);
  const url = await app.listen({ host: options.host, port: options.port });
  return { app, url };
}
