/**
 * Prelude's webhooks: the signature check (RSASSA-PSS with SHA-256 over the raw body, header
 * `X-Webhook-Signature: rsassa-pss-sha256=<base64>`) and the event schemas.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { describeZodError } from '../issues';
import { openEnum } from './open-enum';
import { targetSchema } from './schemas';

/** Result of {@link verifyWebhookSignature}. */
export type WebhookSignatureResult =
  { valid: true } | { valid: false; reason: 'missing_header' | 'malformed_header' | 'bad_signature' };

const headerPattern = /^rsassa-pss-sha256=([A-Za-z0-9+/_-]+={0,2})$/;

/**
 * Checks a webhook's signature against the exact bytes received. Both base64 alphabets are
 * accepted (Prelude's docs say "base64" and "base64 URL-encoded"), with or without padding, and
 * the PSS salt length is detected, since Prelude does not document it.
 *
 * @throws when `publicKey` is not a usable public key (a configuration error, not a bad request).
 */
export function verifyWebhookSignature(
  rawBody: Buffer | string,
  signatureHeader: string | undefined,
  publicKey: string | KeyObject,
): WebhookSignatureResult {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  if (!signatureHeader) return { valid: false, reason: 'missing_header' };
  const match = headerPattern.exec(signatureHeader.trim());
  if (!match?.[1]) return { valid: false, reason: 'malformed_header' };
  const signature = Buffer.from(match[1].replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (signature.length === 0) return { valid: false, reason: 'malformed_header' };
  const body = typeof rawBody === 'string' ? Buffer.from(rawBody) : rawBody;
  const valid = verify(
    'sha256',
    body,
    { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
    signature,
  );
  return valid ? { valid: true } : { valid: false, reason: 'bad_signature' };
}

const metadataSchema = z.looseObject({ correlation_id: z.string().optional() });
const priceSchema = z.looseObject({ amount: z.union([z.number(), z.string()]), currency: z.string() });
const carrierSchema = z.looseObject({ mcc: z.string().optional(), mnc: z.string().optional() });
const deliveryStatusSchema = openEnum(['submitted', 'in_transit', 'delivered', 'undeliverable', 'unknown']);

const envelope = <T extends string, P extends z.ZodType>(type: z.ZodType<T>, payload: P) =>
  z.looseObject({ id: z.string().min(1), type, payload, created_at: z.string() });

/** `verify.authentication`: a verification window was created (and billed). */
export const verifyAuthenticationEventSchema = envelope(
  z.literal('verify.authentication'),
  z.looseObject({
    verification_id: z.string(),
    target: targetSchema,
    price: priceSchema.optional(),
    time: z.string(),
    metadata: metadataSchema.optional(),
  }),
);

/** `verify.attempt`: a message or call was sent. */
export const verifyAttemptEventSchema = envelope(
  z.literal('verify.attempt'),
  z.looseObject({
    id: z.string(),
    verification_id: z.string(),
    target: targetSchema,
    time: z.string(),
    price: priceSchema.optional(),
    carrier_information: carrierSchema.optional(),
    delivery_status: deliveryStatusSchema.optional(),
    metadata: metadataSchema.optional(),
  }),
);

/** `verify.delivery_status`: a carrier's delivery report for an attempt. */
export const verifyDeliveryStatusEventSchema = envelope(
  z.literal('verify.delivery_status'),
  z.looseObject({
    id: z.string(),
    attempt_id: z.string(),
    verification_id: z.string(),
    target: targetSchema.optional(),
    time: z.string(),
    status: deliveryStatusSchema,
    price: priceSchema.optional(),
    carrier_information: carrierSchema.optional(),
    metadata: metadataSchema.optional(),
  }),
);

/** `transactional.message.*`: a Notify message was created, submitted, delivered, failed… */
export const notifyMessageEventSchema = envelope(
  z.string().regex(/^transactional\.message\./) as z.ZodType<`transactional.message.${string}`>,
  z.looseObject({
    id: z.string().optional(),
    message_id: z.string().optional(),
    to: z.string().optional(),
    correlation_id: z.string().optional(),
    status: z.string().optional(),
    reason: z.string().optional(),
  }),
);

/** Any other event: kept, so a new event type is recorded rather than refused. */
export const otherWebhookEventSchema = envelope(z.string().min(1), z.record(z.string(), z.unknown()));

export type VerifyAuthenticationEvent = z.infer<typeof verifyAuthenticationEventSchema>;
export type VerifyAttemptEvent = z.infer<typeof verifyAttemptEventSchema>;
export type VerifyDeliveryStatusEvent = z.infer<typeof verifyDeliveryStatusEventSchema>;
export type NotifyMessageEvent = z.infer<typeof notifyMessageEventSchema>;
export type OtherWebhookEvent = z.infer<typeof otherWebhookEventSchema>;

/** A parsed webhook event. Narrow it with {@link isEventOf}. */
export type WebhookEvent =
  | VerifyAuthenticationEvent
  | VerifyAttemptEvent
  | VerifyDeliveryStatusEvent
  | NotifyMessageEvent
  | OtherWebhookEvent;

const schemaOfType = {
  'verify.authentication': verifyAuthenticationEventSchema,
  'verify.attempt': verifyAttemptEventSchema,
  'verify.delivery_status': verifyDeliveryStatusEventSchema,
} as const;

/** Thrown by {@link parseWebhookEvent} for a body that is not a Prelude event. */
export class WebhookEventError extends Error {
  override readonly name = 'WebhookEventError';
}

/** Parses an event of any type; a known type must have its documented payload. */
export function parseWebhookEvent(json: unknown): WebhookEvent {
  const base = otherWebhookEventSchema.safeParse(json);
  if (!base.success) throw new WebhookEventError(describeZodError(base.error, 'event'));
  const type = base.data.type;
  const schema =
    type in schemaOfType
      ? schemaOfType[type as keyof typeof schemaOfType]
      : type.startsWith('transactional.message.')
        ? notifyMessageEventSchema
        : otherWebhookEventSchema;
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new WebhookEventError(`${type}: ${describeZodError(parsed.error, 'event')}`);
  return parsed.data as WebhookEvent;
}

/** Narrows an event to a known type. */
export function isEventOf<T extends keyof typeof schemaOfType>(
  event: WebhookEvent,
  type: T,
): event is z.infer<(typeof schemaOfType)[T]> {
  return event.type === type;
}

/** Narrows an event to a Notify message event. */
export function isNotifyMessageEvent(event: WebhookEvent): event is NotifyMessageEvent {
  return event.type.startsWith('transactional.message.');
}
