/**
 * Prelude v2 wire format, as zod schemas (field names exactly as on the wire). Requests are checked
 * before they are sent; answers are parsed leniently: unknown fields are kept, unknown enum values
 * pass through (see `openEnum`).
 */
import { z } from 'zod';
import { openEnum } from './open-enum';

/** E.164: a plus, then up to 15 digits, the first not zero. */
export const e164Pattern = /^\+[1-9]\d{1,14}$/;

/** An e-mail address, as far as its shape goes: something, an at sign, a domain with a dot. */
export const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The channels a code can be sent on by message or call: those a send may ask for or fall back to. */
export const sendChannels = ['sms', 'rcs', 'whatsapp', 'viber', 'zalo', 'telegram', 'voice'] as const;
export type SendChannel = (typeof sendChannels)[number];

/** Every channel Prelude names: the sending channels, silent verification and e-mail. */
export const channels = [...sendChannels, 'silent', 'email'] as const;
export type Channel = (typeof channels)[number];

/** What is verified: a phone number (E.164) or an e-mail address. */
export const targetSchema = z.object({
  type: z.enum(['phone_number', 'email_address']),
  value: z.string().min(1),
});
export type Target = z.infer<typeof targetSchema>;

const metadataSchema = z.looseObject({ correlation_id: z.string().max(80).optional() });

const channelSchema = openEnum(channels);

/** Device and network signals Prelude scores fraud with. */
export const signalsSchema = z.looseObject({
  ip: z.string().optional(),
  device_id: z.string().optional(),
  device_platform: openEnum(['android', 'ios', 'ipados', 'tvos', 'web']).optional(),
  device_model: z.string().optional(),
  os_version: z.string().optional(),
  app_version: z.string().optional(),
  user_agent: z.string().optional(),
  ja4_fingerprint: z.string().optional(),
  is_trusted_user: z.boolean().optional(),
});

const dispatchIdSchema = z.string().length(36, 'dispatch_id is 36 characters (a UUID)');

// ---- Verify -----------------------------------------------------------------------------------

/** `POST /v2/verification` body. */
export const createVerificationRequestSchema = z.object({
  target: targetSchema,
  dispatch_id: dispatchIdSchema.optional(),
  metadata: metadataSchema.optional(),
  signals: signalsSchema.optional(),
  options: z
    .looseObject({
      template_id: z.string().optional(),
      variables: z.record(z.string(), z.string()).optional(),
      method: z.enum(['auto', 'voice', 'message']).optional(),
      locale: z.string().optional(),
      sender_id: z.string().optional(),
      app_realm: z.object({ platform: z.string(), value: z.string() }).optional(),
      code_size: z.number().int().min(4).max(8).optional(),
      custom_code: z.string().min(4).max(8).optional(),
      callback_url: z.string().optional(),
      preferred_channel: channelSchema.optional(),
      channels: z.array(channelSchema).optional(),
      force_challenge: z.boolean().optional(),
      max_auto_fallbacks: z.number().int().min(0).optional(),
    })
    .refine((o) => o.code_size === undefined || o.custom_code === undefined, {
      message: 'custom_code and code_size cannot be used together',
    })
    .refine((o) => o.channels === undefined || o.preferred_channel === undefined, {
      message: 'channels and preferred_channel cannot be used together',
    })
    .optional(),
});
export type CreateVerificationRequest = z.input<typeof createVerificationRequestSchema>;

/** `POST /v2/verification` answer. */
export const createVerificationResponseSchema = z.looseObject({
  id: z.string(),
  status: openEnum(['success', 'retry', 'challenged', 'blocked', 'shadow_blocked']),
  method: openEnum(['email', 'message', 'silent', 'voice']),
  reason: openEnum([
    'expired_signature',
    'in_block_list',
    'invalid_phone_line',
    'invalid_phone_number',
    'invalid_signature',
    'repeated_attempts',
    'suspicious',
  ]).optional(),
  risk_factors: z.array(z.string()).optional(),
  channels: z.array(channelSchema).optional(),
  silent: z.looseObject({ request_url: z.string() }).optional(),
  metadata: metadataSchema.optional(),
  request_id: z.string().optional(),
});
export type CreateVerificationResponse = z.infer<typeof createVerificationResponseSchema>;

/** `POST /v2/verification/check` body. */
export const checkVerificationRequestSchema = z.object({
  target: targetSchema,
  code: z.string().min(1),
  psd2: z.object({ amount: z.string(), currency: z.string(), recipient: z.string() }).optional(),
});
export type CheckVerificationRequest = z.input<typeof checkVerificationRequestSchema>;

/** `POST /v2/verification/check` answer. */
export const checkVerificationResponseSchema = z.looseObject({
  status: openEnum([
    'success',
    'failure',
    'expired_or_not_found',
    'transaction_missing',
    'transaction_mismatch',
  ]),
  id: z.string().optional(),
  metadata: metadataSchema.optional(),
  request_id: z.string().optional(),
});
export type CheckVerificationResponse = z.infer<typeof checkVerificationResponseSchema>;

/**
 * One event of a verification's lifecycle in the History API: `type` says which payload it holds
 * (`create`, `attempt`, `check`, `signals`). A check's verdict and an attempt's trigger are read
 * here; the rest pass through.
 */
const historyEventSchema = z.looseObject({
  type: openEnum(['create', 'attempt', 'check', 'signals']),
  check: z.looseObject({ created_at: z.string().optional(), is_valid: z.boolean().optional() }).optional(),
  // Read where it may also be: beside `type` rather than in the check's payload.
  is_valid: z.boolean().optional(),
  // An attempt's trigger (`initial`, `auto_retry`, `user_retry`), in its payload or beside `type`.
  // Not checked here: a record whose triggers read otherwise still gives its checks (the reader
  // then leaves the sends unread).
  attempt: z.looseObject({ trigger: z.unknown().optional() }).optional().catch(undefined),
  trigger: z.unknown().optional(),
});

/**
 * `GET /v2/verification/phone/history/{id}` answer: the read-only record of one phone verification
 * (by the create's `id`), every check it judged among its lifecycle's events.
 */
export const verificationHistorySchema = z.looseObject({
  id: z.string(),
  status: openEnum([
    'converted',
    'not_converted',
    'pending_check',
    'sent',
    'challenged',
    'suspected_fraud',
    'in_blocklist',
    'invalid_line',
    'invalid_number',
    'rate_limited',
    'expired_signals',
    'shadowed',
  ]),
  lifecycle: z.looseObject({ events: z.array(historyEventSchema) }),
});
export type VerificationHistory = z.infer<typeof verificationHistorySchema>;

// ---- Watch ------------------------------------------------------------------------------------

/** `POST /v2/watch/predict` body. */
export const predictRequestSchema = z.object({
  target: targetSchema,
  signals: signalsSchema.optional(),
  dispatch_id: dispatchIdSchema.optional(),
  metadata: metadataSchema.optional(),
});
export type PredictRequest = z.input<typeof predictRequestSchema>;

/** `POST /v2/watch/predict` answer. */
export const predictResponseSchema = z.looseObject({
  id: z.string(),
  prediction: openEnum(['legitimate', 'suspicious']),
  risk_factors: z.array(z.string()).optional(),
  request_id: z.string().optional(),
});
export type PredictResponse = z.infer<typeof predictResponseSchema>;

/** Watch takes 1 to 100 feedbacks or events a call. */
const watchBatch = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(100);

/** `POST /v2/watch/feedback` body. */
export const feedbackRequestSchema = z.object({
  feedbacks: watchBatch(
    z.looseObject({
      target: targetSchema,
      type: z.enum(['verification.started', 'verification.completed']),
      metadata: metadataSchema.optional(),
    }),
  ),
});
export type FeedbackRequest = z.input<typeof feedbackRequestSchema>;

/** `POST /v2/watch/event` body. */
export const eventsRequestSchema = z.object({
  events: watchBatch(
    z.object({
      target: targetSchema,
      label: z.string().min(1),
      confidence: z.enum(['maximum', 'high', 'neutral', 'low', 'minimum']),
    }),
  ),
});
export type EventsRequest = z.input<typeof eventsRequestSchema>;

/** Answer of Watch feedback and events. */
export const watchAckSchema = z.looseObject({
  status: openEnum(['success']),
  request_id: z.string().optional(),
});
export type WatchAck = z.infer<typeof watchAckSchema>;

// ---- Notify -----------------------------------------------------------------------------------

const notifyFields = {
  template_id: z.string().min(1),
  variables: z.record(z.string(), z.string()).optional(),
  from: z.string().optional(),
  locale: z.string().optional(),
  expires_at: z.string().optional(),
  schedule_at: z.string().optional(),
  callback_url: z.string().optional(),
  correlation_id: z.string().max(80).optional(),
  preferred_channel: openEnum(['sms', 'rcs', 'whatsapp']).optional(),
};

/** `POST /v2/notify` body. */
export const notifySendRequestSchema = z.looseObject({
  ...notifyFields,
  to: z.string().regex(e164Pattern, 'to must be an E.164 phone number'),
});
export type NotifySendRequest = z.input<typeof notifySendRequestSchema>;

/** `POST /v2/notify` answer. */
export const notifySendResponseSchema = z.looseObject({
  id: z.string(),
  to: z.string(),
  template_id: z.string(),
  variables: z.record(z.string(), z.string()).optional(),
  created_at: z.string(),
  expires_at: z.string(),
  from: z.string().optional(),
  callback_url: z.string().optional(),
  correlation_id: z.string().optional(),
  schedule_at: z.string().optional(),
  request_id: z.string().optional(),
});
export type NotifySendResponse = z.infer<typeof notifySendResponseSchema>;

/** `POST /v2/notify/batch` body. */
export const notifyBatchRequestSchema = z.looseObject({
  ...notifyFields,
  to: z
    .array(z.string().regex(e164Pattern, 'every recipient must be an E.164 phone number'))
    .min(1)
    .max(1000),
});
export type NotifyBatchRequest = z.input<typeof notifyBatchRequestSchema>;

/** `POST /v2/notify/batch` answer: one result per recipient, in order. */
export const notifyBatchResponseSchema = z.looseObject({
  total_count: z.number().int(),
  success_count: z.number().int(),
  error_count: z.number().int(),
  results: z.array(
    z.looseObject({
      phone_number: z.string(),
      success: z.boolean(),
      error: z.looseObject({ code: z.string().optional(), message: z.string().optional() }).optional(),
      message: z.looseObject({ id: z.string().optional() }).optional(),
    }),
  ),
  request_id: z.string().optional(),
});
export type NotifyBatchResponse = z.infer<typeof notifyBatchResponseSchema>;

/** Prelude's error body. */
export const errorBodySchema = z.looseObject({
  code: z.string(),
  message: z.string().optional(),
  type: z.string().optional(),
  request_id: z.string().optional(),
});
