import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { sendError } from './errors';

/** `GET /healthz` (the process answers) and `GET /readyz` (Temporal answers too). */
export async function healthRoutes(app: FastifyInstance, { client }: { client: Client }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await client.connection.withDeadline(Date.now() + 2_000, () =>
        client.connection.workflowService.getSystemInfo({}),
      );
      return { status: 'ready' };
    } catch {
      return sendError(reply, 503, 'temporal_unavailable', 'Temporal does not answer');
    }
  });
}
