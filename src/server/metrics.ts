/**
 * The service's metrics: every answered request counted by route and status (an `onResponse` hook on
 * the whole service), and `GET /metrics` in Prometheus' text format.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ServiceMetrics } from '../metrics';
import { requireBearer } from './auth';
import { errorAnswers } from './schemas';

/** Counts every answer of `app` (and of everything registered in it afterwards). */
export function countRequests(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.recordRequest(
      request.method,
      request.routeOptions.url,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });
}

/** Registers `GET /metrics`, behind `token` when one is set. */
export async function metricsRoutes(
  app: FastifyInstance,
  { metrics, token }: { metrics: ServiceMetrics; token?: string },
): Promise<void> {
  requireBearer(app, token ? [token] : []);
  app.withTypeProvider<ZodTypeProvider>().get(
    '/metrics',
    {
      logLevel: 'warn',
      schema: {
        operationId: 'metrics',
        summary: 'Prometheus metrics of the service (the worker serves its own on METRICS_PORT)',
        description: 'Requests by route and status, and webhook events with the prices they carry.',
        tags: ['operations'],
        // METRICS_TOKEN when the operator set one, else open.
        security: [{ metricsToken: [] }, {}],
        response: {
          200: {
            description: 'Prometheus text format',
            content: { 'text/plain': { schema: z.string() } },
          },
          ...errorAnswers(),
        },
      },
    },
    async (_request, reply) => {
      const page = await metrics.registry.metrics();
      return reply
        .type(metrics.registry.contentType)
        .serializer((payload: string) => payload)
        .send(page);
    },
  );
}
