/**
 * `POST /webhooks/prelude`: Prelude's signed webhooks. The raw body is kept for the signature
 * check; an accepted event becomes an ingest workflow named after the event, so a redelivery is
 * a no-op, and Prelude hears 200 only once Temporal holds the event (else 5xx, and it retries).
 *
 * Everything that is not a signed Prelude event is refused with a 4xx before Temporal is
 * contacted: no body, a body that is not JSON, a content type other than JSON, a body over the
 * limit (413), a missing, malformed or wrong signature (401). Neither bodies nor headers are
 * logged: an event carries phone numbers.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import { parseWebhookEvent, verifyWebhookSignature, type WebhookEvent } from '../prelude';
import {
  ingestWorkflowId,
  targetKeySearchAttribute,
  webhookIngestWorkflow,
  windowIdPrefix,
} from '../../workflows';
import { sendError } from './errors';

/** What the webhook route needs. */
export interface WebhookRouteOptions {
  client: Client;
  taskQueue: string;
  /** PEM public key Prelude (or the sandbox) signs with; without it every webhook is refused. */
  publicKey?: string;
  bodyLimitBytes: number;
}

/**
 * What an event ID or a target key must look like to go into a workflow ID or a search attribute:
 * printable ASCII, at most 255 characters. Prelude's are ~30 (`evt_01jn…`, an HMAC); anything else
 * would risk a refusal from Temporal, answered 5xx, that Prelude would retry for ever.
 */
const idPattern = /^[\x21-\x7e]{1,255}$/;

/** Registers the webhook route (in its own scope: it alone parses JSON bodies as raw bytes). */
export async function webhookRoutes(app: FastifyInstance, options: WebhookRouteOptions): Promise<void> {
  // Only JSON is parsed; any other content type is answered 415 by Fastify before the handler.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: options.bodyLimitBytes },
    (_req, body, done) => done(null, body),
  );
  const publicKey = loadPublicKey(options.publicKey);

  app.post('/webhooks/prelude', async (request, reply) => {
    if (publicKey === undefined) {
      return sendError(reply, 503, 'webhook_key_missing', 'PRELUDE_WEBHOOK_PUBLIC_KEY is not configured');
    }
    if (publicKey instanceof Error) {
      return sendError(reply, 503, 'webhook_key_invalid', 'PRELUDE_WEBHOOK_PUBLIC_KEY is not a public key');
    }
    const raw = request.body;
    if (!Buffer.isBuffer(raw) || raw.length === 0) {
      return sendError(reply, 400, 'empty_body', 'a webhook event is a JSON body');
    }
    const header = request.headers['x-webhook-signature'];
    const signature = verifyWebhookSignature(raw, typeof header === 'string' ? header : undefined, publicKey);
    if (!signature.valid) return sendError(reply, 401, 'invalid_signature', `signature ${signature.reason}`);

    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      // The parser's message quotes the body; the answer does not.
      return sendError(reply, 400, 'invalid_json', 'the body is not JSON');
    }
    let event: WebhookEvent;
    try {
      event = parseWebhookEvent(json);
    } catch (error) {
      return sendError(
        reply,
        400,
        'invalid_event',
        `not a Prelude webhook event: ${(error as Error).message}`,
      );
    }
    if (!idPattern.test(event.id)) {
      return sendError(
        reply,
        400,
        'invalid_event',
        'not a Prelude webhook event: id: expected 1 to 255 printable ASCII characters',
      );
    }

    try {
      await options.client.workflow.start(webhookIngestWorkflow, {
        workflowId: ingestWorkflowId(event.id),
        taskQueue: options.taskQueue,
        args: [event],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowIdConflictPolicy: 'FAIL',
        typedSearchAttributes: searchAttributesOf(event),
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

/** The configured key, parsed once; an Error when it is not a key (answered 503, not 500). */
function loadPublicKey(pem: string | undefined): KeyObject | Error | undefined {
  if (!pem) return undefined;
  try {
    return createPublicKey(pem);
  } catch (error) {
    return error as Error;
  }
}

/**
 * An ingest run about a verification window carries the window's target key (an opaque HMAC), so
 * that forgetting a target can find and delete its ingest runs along with its windows.
 */
function searchAttributesOf(event: WebhookEvent): SearchAttributePair[] {
  const key = windowCorrelationId(event)?.slice(windowIdPrefix.length);
  return key && idPattern.test(key) ? [{ key: targetKeySearchAttribute, value: key }] : [];
}

/** `payload.metadata.correlation_id` of an event, when it names a verification window. */
function windowCorrelationId(event: WebhookEvent): string | undefined {
  const { metadata } = event.payload as { metadata?: unknown };
  if (typeof metadata !== 'object' || metadata === null) return undefined;
  const id = (metadata as { correlation_id?: unknown }).correlation_id;
  return typeof id === 'string' && id.startsWith(windowIdPrefix) ? id : undefined;
}
