/**
 * `POST /webhooks/prelude`: Prelude's signed webhooks. The raw body is kept for the signature
 * check; an accepted event is signalled to the run it is about (../ingest), which applies an event
 * ID once, and Prelude hears 200 only once Temporal holds the signal (else 5xx, and it retries). An
 * event for a run that has ended, or for none of ours, is answered 200 and counted.
 *
 * Everything that is not a signed Prelude event is refused with a 4xx before Temporal is
 * contacted: no body, a body that is not JSON, a content type other than JSON, a body over the
 * limit (413), a missing, malformed or wrong signature (401). Neither bodies nor headers are
 * logged: an event carries phone numbers.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Client } from '@temporalio/client';
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
import { ingestEvent } from '../ingest';
import { ServiceError } from './errors';
import { errorAnswers, webhookAnswerSchema } from './schemas';

/** What the webhook route needs. */
export interface WebhookRouteOptions {
  client: Client;
  /** PEM public key Prelude (or the sandbox) signs with; without it every webhook is refused. */
  publicKey?: string;
  /** Where events and their prices are counted; absent: not counted. */
  metrics?: ServiceMetrics;
}

/**
 * What an event ID must look like to go into a window's history: printable ASCII, at most 255
 * characters. Prelude's are ~30 (`evt_01jn…`); anything else is refused before Temporal is asked.
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

/** The webhook route's config: it is authenticated by Prelude's signature, not by a caller's credential. */
const webhookRouteConfig = { preludeSignature: true };

/**
 * Whether a route is the webhook route, which Prelude's signature authenticates: an app's
 * authentication hook lets its requests through (`isSignedWebhookRoute(request.routeOptions.config)`);
 * the route refuses them unless they are signed.
 */
export function isSignedWebhookRoute(config: unknown): boolean {
  return (config as Partial<typeof webhookRouteConfig> | undefined)?.preludeSignature === true;
}

/** Registers the webhook route (in its own scope: it alone parses JSON bodies as raw bytes). */
export async function webhookRoutes(app: FastifyInstance, options: WebhookRouteOptions): Promise<void> {
  // Only JSON is parsed; any other content type is answered 415 by Fastify before the handler.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    // The app's body limit applies.
    { parseAs: 'buffer' },
    (_req, body, done) => done(null, body),
  );
  const publicKey = loadPublicKey(options.publicKey);

  const record = (event: WebhookEvent | undefined, result: WebhookResult) =>
    options.metrics?.recordWebhook(event, result);

  app.withTypeProvider<ZodTypeProvider>().post(
    '/webhooks/prelude',
    {
      config: webhookRouteConfig,
      schema: {
        operationId: 'receivePreludeWebhook',
        summary: "Prelude's signed webhooks",
        description:
          'Authenticated by `X-Webhook-Signature`, not by a bearer token. Each event is signalled to the ' +
          'verification window (or notification) it names, which applies an event ID once; 200 only once ' +
          'Temporal holds the signal, or when the event names no open run of ours.',
        tags: ['webhooks'],
        security: [],
        headers: signatureHeaders,
        body: eventBody,
        response: {
          200: webhookAnswerSchema,
          ...errorAnswers(
            'empty_body',
            'invalid_json',
            'invalid_event',
            'invalid_request',
            'invalid_signature',
            'payload_too_large',
            'unsupported_media_type',
            'unavailable',
            'webhook_key_missing',
            'webhook_key_invalid',
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
    async (request) => {
      if (publicKey === undefined) {
        throw new ServiceError('webhook_key_missing', 'PRELUDE_WEBHOOK_PUBLIC_KEY is not configured');
      }
      if (publicKey instanceof Error) {
        throw new ServiceError('webhook_key_invalid', 'PRELUDE_WEBHOOK_PUBLIC_KEY is not a public key');
      }
      const raw: unknown = request.body;
      if (!Buffer.isBuffer(raw) || raw.length === 0) {
        record(undefined, 'empty_body');
        throw new ServiceError('empty_body', 'a webhook event is a JSON body');
      }
      const signature = verifyWebhookSignature(raw, request.headers['x-webhook-signature'], publicKey);
      if (!signature.valid) {
        record(undefined, 'invalid_signature');
        throw new ServiceError('invalid_signature', `signature ${signature.reason}`);
      }

      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        record(undefined, 'invalid_json');
        // The parser's message quotes the body; the answer does not.
        throw new ServiceError('invalid_json', 'the body is not JSON');
      }
      let event: WebhookEvent;
      try {
        event = parseWebhookEvent(json);
      } catch (error) {
        record(undefined, 'invalid_event');
        throw new ServiceError('invalid_event', `not a Prelude webhook event: ${(error as Error).message}`);
      }
      if (!idPattern.test(event.id)) {
        record(undefined, 'invalid_event');
        throw new ServiceError(
          'invalid_event',
          'not a Prelude webhook event: id: expected 1 to 255 printable ASCII characters',
        );
      }

      try {
        const { disposition } = await ingestEvent(options.client, event);
        record(event, disposition);
        return { status: 'accepted' as const, event_id: event.id, disposition };
      } catch (error) {
        record(event, 'unavailable');
        request.log.error({ err: error, eventId: event.id }, 'could not hand the webhook event to Temporal');
        throw new ServiceError('unavailable', 'the event could not be stored; retry later');
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
