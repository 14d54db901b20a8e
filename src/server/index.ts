/**
 * The HTTP service: verifications for backend code, Prelude's webhooks, health and metrics, the API
 * reference, and the payload codec endpoints for the Temporal Web UI. Routes declare their schemas
 * (zod, through Fastify's type provider): Fastify validates requests and serialises answers with them,
 * errors become `{ code, message }` in one place, and the OpenAPI document is generated from them.
 */
import { STATUS_CODES } from 'node:http';
import cors from '@fastify/cors';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { VerificationClientOptions } from '../client';
import { codecServerRoutes, type CodecServerOptions } from '../codec';
import { statusOf } from '../errors';
import { trackUnusedConnections } from '../graceful-close';
import { ServiceMetrics } from '../metrics';
import { requireBearer } from './auth';
import { docsRoutes, generateOpenApi } from './docs';
import { adminRoutes } from './admin';
import { answerError, sendError } from './errors';
import { healthRoutes } from './health';
import { loggerOptions, newRequestId } from './logging';
import { countRequests, metricsRoutes } from './metrics';
import { verificationRoutes } from './plugin';

export { maskTarget } from './masking';

/** What the service needs. */
export interface ServerOptions {
  client: Client;
  verification: VerificationClientOptions;
  /** Bearer token every route but the webhook, health, metrics and docs routes requires. */
  apiToken?: string;
  /** Bearer token of the admin routes (`SERVICE_ADMIN_TOKEN`); absent: they are not served. */
  adminToken?: string;
  /** Start fields a caller may set beyond the safe ones (`SERVICE_ALLOW_OVERRIDES`; `*`: all). */
  allowOverrides?: readonly string[];
  /** PEM public key webhooks are verified with. */
  webhookPublicKey?: string;
  bodyLimitBytes: number;
  /** The Web UI's codec endpoints, behind their own credential; absent: not served. */
  codec?: CodecServerOptions;
  /** Request logging (JSON lines on stdout), with personal data and credentials left out. */
  logger?: boolean;
  /** Where log lines go instead of stdout. */
  logStream?: { write(line: string): void };
  /** Browser origins allowed to call the verification routes (`SERVICE_CORS_ORIGINS`); none by default. */
  corsOrigins?: readonly string[];
  /** Where requests and webhook events are counted; default: metrics of this service alone. */
  metrics?: ServiceMetrics;
  /** Bearer token `GET /metrics` requires (`METRICS_TOKEN`); absent: open. */
  metricsToken?: string;
  /** Prelude's (or the sandbox's) base URL, which readiness checks; absent: not checked. */
  preludeUrl?: string;
}

/** Builds (does not start) the service. */
export function buildServer(options: ServerOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger
      ? { ...loggerOptions, ...(options.logStream ? { stream: options.logStream } : {}) }
      : false,
    genReqId: newRequestId,
    requestIdHeader: false,
    bodyLimit: options.bodyLimitBytes,
    // Window IDs in plaintext mode hold an e-mail address (up to 320 characters).
    routerOptions: { maxParamLength: 400 },
    // Errors of the router itself, in the service's shape, never echoing the URL (it may hold a
    // phone number a caller put there by mistake).
    frameworkErrors: (error, _request, reply) =>
      error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? sendError(reply, 'not_found', 'no such resource')
        : sendError(reply, 'invalid_request', 'malformed URL'),
    // Requests Node refuses before any route runs (oversized headers, a control character in one,
    // an unknown method) get the same JSON shape, then the connection is closed.
    clientErrorHandler: (error: Error & { code?: string }, socket) => {
      const code =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? 'headers_too_large'
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? 'request_timeout'
            : 'invalid_request';
      const status = statusOf(code);
      const reason = STATUS_CODES[status];
      const body = JSON.stringify({ code, message: reason });
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    },
  });
  trackUnusedConnections(app.server);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // The routes' own scope has the same handler; this one answers the others (health, metrics, codec).
  app.setErrorHandler(answerError);
  app.setNotFoundHandler((request, reply) =>
    // The path is not echoed: it may be a caller's mistake holding a phone number.
    sendError(reply, 'not_found', `no route for ${request.method} at this path`),
  );
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });

  const metrics = options.metrics ?? new ServiceMetrics();
  countRequests(app, metrics);

  generateOpenApi(app, { codec: options.codec !== undefined, admin: options.adminToken !== undefined });
  void app.register(docsRoutes);
  void app.register(healthRoutes, {
    client: options.client,
    taskQueue: options.verification.taskQueue,
    preludeUrl: options.preludeUrl,
  });
  void app.register(metricsRoutes, { metrics, token: options.metricsToken });
  void app.register(async (scope) => {
    // CORS first: a browser's preflight carries no token.
    await scope.register(cors, {
      origin: options.corsOrigins?.length ? [...options.corsOrigins] : false,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key'],
      exposedHeaders: ['retry-after', 'x-request-id'],
      maxAge: 600,
      // A request without CORS headers is answered as any other (JSON errors), not as plain text.
      strictPreflight: false,
    });
    // Before the body is read: an unauthenticated caller cannot make the service parse anything.
    requireBearer(scope, options.apiToken ? [options.apiToken] : []);
    await scope.register(verificationRoutes, {
      client: options.client,
      verification: options.verification,
      allowOverrides: options.allowOverrides,
      webhookPublicKey: options.webhookPublicKey,
      metrics,
    });
  });
  if (options.adminToken) {
    void app.register(adminRoutes, {
      client: options.client,
      verification: options.verification,
      token: options.adminToken,
    });
  }
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
