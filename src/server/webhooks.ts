/**
 * `POST /webhooks/prelude`: Prelude's signed webhooks. The raw body is kept for the signature
 * check; an accepted event becomes an ingest workflow named after the event, so a redelivery is
 * a no-op, and Prelude hears 200 only once Temporal holds the event (else 5xx, and it retries).
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { parseWebhookEvent, verifyWebhookSignature } from '../prelude';
import { ingestWorkflowId, webhookIngestWorkflow } from '../../workflows';
import { sendError } from './errors';

/** What the webhook route needs. */
export interface WebhookRouteOptions {
  client: Client;
  taskQueue: string;
  /** PEM public key Prelude (or the sandbox) signs with; without it every webhook is refused. */
  publicKey?: string;
  bodyLimitBytes: number;
}

/** Registers the webhook route (in its own scope: it alone parses JSON bodies as raw bytes). */
export async function webhookRoutes(app: FastifyInstance, options: WebhookRouteOptions): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: options.bodyLimitBytes },
    (_req, body, done) => done(null, body),
  );

  app.post('/webhooks/prelude', async (request, reply) => {
    if (!options.publicKey) {
      return sendError(reply, 503, 'webhook_key_missing', 'PRELUDE_WEBHOOK_PUBLIC_KEY is not configured');
    }
    const raw = request.body as Buffer;
    const header = request.headers['x-webhook-signature'];
    const signature = verifyWebhookSignature(
      raw,
      typeof header === 'string' ? header : undefined,
      options.publicKey,
    );
    if (!signature.valid) return sendError(reply, 401, 'invalid_signature', `signature ${signature.reason}`);

    let event;
    try {
      event = parseWebhookEvent(JSON.parse(raw.toString('utf8')));
    } catch (error) {
      return sendError(
        reply,
        400,
        'invalid_event',
        `not a Prelude webhook event: ${(error as Error).message}`,
      );
    }

    try {
      await options.client.workflow.start(webhookIngestWorkflow, {
        workflowId: ingestWorkflowId(event.id),
        taskQueue: options.taskQueue,
        args: [event],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowIdConflictPolicy: 'FAIL',
      });
      return { status: 'accepted', event_id: event.id };
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError)
        return { status: 'duplicate', event_id: event.id };
      request.log.error({ err: error, eventId: event.id }, 'could not hand the webhook event to Temporal');
      return sendError(reply, 503, 'unavailable', 'the event could not be stored; retry later');
    }
  });
}
