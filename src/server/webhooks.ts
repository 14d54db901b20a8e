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
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ServiceMetrics, WebhookResult } from '../metrics';
import {
  otherWebhookEventSchema,
  parseWebhookEvent,
  verifyWebhookSignature,
  type WebhookEvent,
} from '../prelude';
import { webhookIngestWorkflow } from '../../workflows';
import { ingestWorkflowId, targetKeySearchAttribute, windowIdPrefix } from '../../workflows/messages';
import { sendError } from './errors';
import { errorAnswer, webhookAnswerSchema } from './schemas';

/** What the webhook route needs. */
export interface WebhookRouteOptions {
  client: Client;
  taskQueue: string;
  /** PEM public key Prelude (or the sandbox) signs with; without it every webhook is refused. */
  publicKey?: string;
  bodyLimitBytes: number;
  /** Where events and their prices are counted. */
  metrics: ServiceMetrics;
}

/**
 * What an event ID or a target key must look like to go into a workflow ID or a search attribute:
 * printable ASCII, at most 255 characters. Prelude's are ~30 (`evt_01jn…`, an HMAC); anything else
 * would risk a refusal from Temporal, answered 5xx, that Prelude would retry for ever.
 */
const idPattern = /^[\x21-\x7e]{1,255}$/;

const signatureHeaders = z.looseObject({
  'x-webhook-signature': z
    .string()
    .optional()
    .describe('rsassa-pss-sha256=<base64 RSASSA-PSS-SHA256 of the raw body>: without a valid one, 401'),
});

const eventBody = otherWebhookEventSchema.describe(
  'a Prelude webhook event: verify.authentication, verify.attempt, verify.delivery_status, transactional.message.*, …',
);

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

  const record = (event: WebhookEvent | undefined, result: WebhookResult) =>
    options.metrics.recordWebhook(event, result);

  app.withTypeProvider<ZodTypeProvider>().post(
    '/webhooks/prelude',
    {
      schema: {
        summary: "Prelude's signed webhooks",
        description:
          'Authenticated by `X-Webhook-Signature`, not by a bearer token. Each event is stored as a Temporal ' +
          'workflow named after its ID, so a redelivery is applied once; 200 only once Temporal holds it.',
        tags: ['webhooks'],
        security: [],
        headers: signatureHeaders,
        body: eventBody,
        response: {
          200: webhookAnswerSchema,
          400: errorAnswer(
            '`empty_body`, `invalid_json`, `invalid_event`, `invalid_request`: nothing was stored',
          ),
          401: errorAnswer('`invalid_signature`'),
          413: errorAnswer('`payload_too_large`'),
          415: errorAnswer('`unsupported_media_type`: events are application/json'),
          503: errorAnswer(
            '`unavailable` (Temporal did not take the event: Prelude retries), `webhook_key_missing`, `webhook_key_invalid`',
          ),
        },
      },
      // The signature covers the raw bytes, so the body is checked here in order — signature, JSON, event —
      // rather than by the schema, which documents it. (Fastify types `route.schema` as the route's whole
      // schema; it is the part's.)
      validatorCompiler: (route) =>
        route.httpPart === 'body'
          ? (value: unknown) => ({ value })
          : validatorCompiler(route as unknown as Parameters<typeof validatorCompiler>[0]),
    },
    async (request, reply) => {
      if (publicKey === undefined) {
        return sendError(reply, 503, 'webhook_key_missing', 'PRELUDE_WEBHOOK_PUBLIC_KEY is not configured');
      }
      if (publicKey instanceof Error) {
        return sendError(reply, 503, 'webhook_key_invalid', 'PRELUDE_WEBHOOK_PUBLIC_KEY is not a public key');
      }
      const raw: unknown = request.body;
      if (!Buffer.isBuffer(raw) || raw.length === 0) {
        record(undefined, 'empty_body');
        return sendError(reply, 400, 'empty_body', 'a webhook event is a JSON body');
      }
      const signature = verifyWebhookSignature(raw, request.headers['x-webhook-signature'], publicKey);
      if (!signature.valid) {
        record(undefined, 'invalid_signature');
        return sendError(reply, 401, 'invalid_signature', `signature ${signature.reason}`);
      }

      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        record(undefined, 'invalid_json');
        // The parser's message quotes the body; the answer does not.
        return sendError(reply, 400, 'invalid_json', 'the body is not JSON');
      }
      let event: WebhookEvent;
      try {
        event = parseWebhookEvent(json);
      } catch (error) {
        record(undefined, 'invalid_event');
        return sendError(
          reply,
          400,
          'invalid_event',
          `not a Prelude webhook event: ${(error as Error).message}`,
        );
      }
      if (!idPattern.test(event.id)) {
        record(undefined, 'invalid_event');
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
        record(event, 'accepted');
        return { status: 'accepted' as const, event_id: event.id };
      } catch (error) {
        if (error instanceof WorkflowExecutionAlreadyStartedError) {
          record(event, 'duplicate');
          return { status: 'duplicate' as const, event_id: event.id };
        }
        record(event, 'unavailable');
        request.log.error({ err: error, eventId: event.id }, 'could not hand the webhook event to Temporal');
        return sendError(reply, 503, 'unavailable', 'the event could not be stored; retry later');
      }
    },
  );
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
