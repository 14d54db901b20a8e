/**
 * The shapes of the service's answers, as zod schemas: Fastify serialises every answer through them
 * and the OpenAPI document is generated from them, so the reference cannot drift from the code.
 * Requests' shapes come from the client helpers' schemas (src/client), the same ones backend code meets.
 */
import { z } from 'zod';
import { errorTable, statusOf, type ErrorCode } from '../errors';
import { ingestDispositions } from '../ingest';
import { outcomes } from '../../workflows/messages';

/** A count or a number of seconds: a whole number, never negative. */
const count = () => z.number().int().min(0);

/** An ISO 8601 time (RFC 3339), as every time in the API. */
const time = (description?: string) =>
  z.string().meta({ format: 'date-time', ...(description === undefined ? {} : { description }) });

/** Codes any request can be answered with, whatever its route. */
const answeredAnywhere: ErrorCode[] = ['request_timeout', 'headers_too_large', 'internal'];

/** The body of every error answer. */
const errorSchema = z.object({
  code: z.string().describe('what went wrong, as a stable code'),
  message: z.string().describe('what went wrong, for a person'),
  nothing_sent: z
    .literal(true)
    .optional()
    .describe(
      'on a failed send: no code went out (Prelude answered every attempt with an error), and the send counts against no limit, so the user may simply try again',
    ),
});

/** An error answer that says when to ask again. */
const retryErrorSchema = errorSchema.extend({
  retry_after_seconds: count().optional().describe('when to try again (also in the Retry-After header)'),
});

/**
 * The error answers of an operation that can answer these codes, by status, each described by the
 * error table: what every code of the status means, and `retry_after_seconds` where one carries it.
 * The answers any request can get (headers too large, a request too slow, a failure of the service)
 * are added.
 */
export function errorAnswers(...codes: ErrorCode[]): Record<number, z.ZodType> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...codes, ...answeredAnywhere])) {
    byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, ofStatus]) => {
      const retryAfter = ofStatus.some((code) => 'retryAfter' in errorTable[code]);
      const description = ofStatus.map((code) => `\`${code}\`: ${errorTable[code].description}`).join('; ');
      return [status, (retryAfter ? retryErrorSchema : errorSchema).describe(description)];
    }),
  );
}

/** `POST /verifications` answer. */
export const startAnswerSchema = z
  .object({
    id: z.string().describe('the window ID (its workflow ID): opaque, it never shows the target'),
    status: z
      .string()
      .describe(
        "Prelude's answer: success (a new window), retry (a resend in the open one), blocked, challenged, shadow_blocked",
      ),
    verification_id: z.string().optional().describe("Prelude's verification ID (vrf_…)"),
    expires_at: time('when the window closes'),
    attempts: count().describe('codes sent in the window, this one included'),
    next_resend_at: time('from when a resend is accepted; absent once none is left').optional(),
    reason: z.string().optional().describe('why a target was blocked (suspicious, in_block_list, …)'),
    risk_factors: z.array(z.string()).optional(),
  })
  .describe('sent: a new window, or a resend in the open one');

/** `202` answer of `POST /verifications`. */
export const pendingAnswerSchema = z
  .object({
    status: z.literal('pending'),
    id: z.string().describe('the window ID: read it for the outcome'),
    message: z.string(),
  })
  .describe('the send outlived the deadline while a worker was sending it: read the window for its outcome');

/** `POST /verifications/check` answer. */
export const checkAnswerSchema = z
  .object({
    status: z
      .enum(['success', 'failure', 'expired_or_not_found'])
      .describe(
        'expired_or_not_found: no open window, whatever the reason (nothing is learnt about a target)',
      ),
    id: z.string().optional().describe('the window ID (absent with expired_or_not_found)'),
    checks_left: count().optional(),
    verification_id: z.string().optional(),
  })
  .describe('checked');

/** `POST /verifications/forget` answer. */
export const forgetAnswerSchema = z
  .object({
    status: z.literal('forgotten'),
    target_key: z.string().describe('the HMAC the target was filed under'),
    deleted: count().describe('workflow executions deleted'),
  })
  .describe('erased');

/** A window as `GET`/`DELETE /verifications/{id}` show it: its target masked. */
export const windowSchema = z.object({
  id: z.string(),
  target: z
    .object({ type: z.enum(['phone_number', 'email_address']), value: z.string() })
    .describe('masked: +33•••••••78, ad•••@example.com'),
  status: z.enum(['open', ...outcomes]),
  verification_id: z.string().optional(),
  method: z.string().optional().describe("Prelude's method: message, voice, email, silent"),
  prediction: z.string().optional().describe("Watch's verdict (legitimate, suspicious), or unavailable"),
  inferred: z
    .string()
    .optional()
    .describe('why the outcome was read from Prelude’s lifecycle rules after a lost answer'),
  target_limits: z
    .object({
      windows_left: count(),
      sends_left: count(),
      next_release_at: time().optional(),
    })
    .optional()
    .describe("the target's allowance across windows after the latest send"),
  reason: z.string().optional(),
  risk_factors: z.array(z.string()).optional(),
  attempts: z.array(
    z.object({
      number: count(),
      trigger: z.enum(['initial', 'user_retry', 'fallback', 'auto_retry']),
      channel: z.string().optional(),
      sent_at: time(),
      attempt_id: z.string().optional().describe("Prelude's attempt ID (att_…), once a webhook named it"),
      delivery_status: z
        .string()
        .optional()
        .describe('submitted, in_transit, delivered, undeliverable, unknown'),
      delivery_updated_at: time().optional(),
    }),
  ),
  sends_left: count(),
  next_resend_at: time().optional(),
  checks_used: count(),
  checks_left: count(),
  opened_at: time(),
  expires_at: time(),
  closed_at: time().optional(),
});

/** `POST /webhooks/prelude` answer. */
export const webhookAnswerSchema = z
  .object({
    status: z.literal('accepted'),
    event_id: z.string(),
    disposition: z
      .enum(ingestDispositions)
      .describe(
        'applied: signalled to its run (a redelivery is applied once); run_closed: its run has ended; ' +
          'unknown_target: it names no run of ours; informational: no run waits for it',
      ),
  })
  .describe('Temporal holds the event, or it names no open run of ours');
