/**
 * Notify: templated messages to phone numbers, with Prelude's validation rules and delivery
 * webhooks. Templates are built in, and more can be added with `PUT /sandbox/templates`.
 */
import { z } from 'zod';
import type { NotifyBatchRequest, NotifySendRequest } from '../prelude';
import { e164Pattern } from '../prelude';
import type { SandboxClock } from './clock';
import { newId } from './ids';
import type { Inbox } from './inbox';
import type { SandboxSettings } from './settings';
import type { WebhookDispatcher } from './webhooks';

/** A message template. */
export const templateSchema = z.object({
  id: z.string().min(1),
  body: z.string().min(1),
  variables: z.array(z.string()).default([]),
  category: z.enum(['transactional', 'marketing']).default('transactional'),
});
export type Template = z.infer<typeof templateSchema>;

const builtInTemplates: Template[] = [
  {
    id: 'template_sandbox_verified',
    body: 'Your phone number is verified. Welcome!',
    variables: [],
    category: 'transactional',
  },
  {
    id: 'template_sandbox_order_shipped',
    body: 'Your order {{order_id}} has shipped.',
    variables: ['order_id'],
    category: 'transactional',
  },
  {
    id: 'template_sandbox_promo',
    body: 'Save {{discount}} this week!',
    variables: ['discount'],
    category: 'marketing',
  },
];

type Failure = { code: string; message: string };
type SendOutcome = { ok: true; message: Record<string, unknown> } | { ok: false; error: Failure };

/** Sends Notify messages into the inbox. */
export class NotifyEngine {
  readonly templates = new Map(builtInTemplates.map((t) => [t.id, t]));

  constructor(
    private readonly settings: () => SandboxSettings,
    private readonly inbox: Inbox,
    private readonly webhooks: WebhookDispatcher,
    private readonly clock: SandboxClock,
  ) {}

  /** `POST /v2/notify`: the message, or the error for the whole request. */
  send(request: NotifySendRequest, now = this.clock.now()): SendOutcome {
    const common = this.#validate(request, now);
    if (common) return { ok: false, error: common };
    return this.#sendTo(request.to, request, now);
  }

  /** `POST /v2/notify/batch`: one result per recipient; only request-wide problems fail it. */
  sendBatch(
    request: NotifyBatchRequest,
    now = this.clock.now(),
  ): { ok: true; body: Record<string, unknown> } | { ok: false; error: Failure } {
    const common = this.#validate(request, now);
    if (common) return { ok: false, error: common };
    const results = request.to.map((to) => {
      const outcome = this.#sendTo(to, request, now);
      return outcome.ok
        ? { phone_number: to, success: true, message: outcome.message }
        : { phone_number: to, success: false, error: outcome.error };
    });
    const successes = results.filter((r) => r.success).length;
    return {
      ok: true,
      body: {
        total_count: results.length,
        success_count: successes,
        error_count: results.length - successes,
        results,
        template_id: request.template_id,
        variables: request.variables ?? {},
        ...(request.callback_url ? { callback_url: request.callback_url } : {}),
      },
    };
  }

  #validate(request: NotifySendRequest | NotifyBatchRequest, now: number): Failure | undefined {
    const template = this.templates.get(request.template_id);
    if (!template) return { code: 'template_not_found', message: `no template ${request.template_id}` };
    const given = Object.keys(request.variables ?? {}).sort();
    if (given.join(',') !== [...template.variables].sort().join(',')) {
      return {
        code: 'invalid_template_variables',
        message: `the template takes exactly these variables: ${template.variables.join(', ') || 'none'}`,
      };
    }
    if (request.expires_at !== undefined) {
      const expires = Date.parse(request.expires_at);
      if (Number.isNaN(expires))
        return { code: 'invalid_request', message: 'expires_at is not an RFC 3339 time' };
      if (expires <= now) return { code: 'expires_at_in_past', message: 'expires_at is in the past' };
      if (expires > now + 86_400_000) {
        return { code: 'expires_at_too_far_in_future', message: 'expires_at must be within the next day' };
      }
    }
    if (request.schedule_at !== undefined) {
      const at = Date.parse(request.schedule_at);
      if (Number.isNaN(at) || at <= now)
        return { code: 'invalid_schedule_at', message: 'schedule_at must be in the future' };
    }
    return undefined;
  }

  #sendTo(to: string, request: NotifySendRequest | NotifyBatchRequest, now: number): SendOutcome {
    if (!e164Pattern.test(to))
      return { ok: false, error: { code: 'invalid_phone_number', message: `${to} is not E.164` } };
    const template = this.templates.get(request.template_id)!;
    if (template.category === 'marketing' && this.settings().unsubscribedNumbers.includes(to)) {
      return {
        ok: false,
        error: { code: 'unsubscribed', message: 'the recipient unsubscribed from marketing messages' },
      };
    }
    const variables = request.variables ?? {};
    const body = template.body.replace(/\{\{(\w+)\}\}/g, (_, name: string) => variables[name] ?? '');
    const message = {
      id: newId('tx'),
      to,
      template_id: template.id,
      variables,
      created_at: new Date(now).toISOString(),
      expires_at: request.expires_at ?? new Date(now + 86_400_000).toISOString(),
      ...(request.from ? { from: request.from } : {}),
      ...(request.callback_url ? { callback_url: request.callback_url } : {}),
      ...(request.correlation_id ? { correlation_id: request.correlation_id } : {}),
      ...(request.schedule_at ? { schedule_at: request.schedule_at } : {}),
    };
    this.inbox.add({
      to,
      channel: request.preferred_channel ?? 'sms',
      code: null,
      body,
      verification_id: null,
    });
    this.#reportDelivery(message, request.callback_url);
    return { ok: true, message };
  }

  #reportDelivery(message: { id: string; to: string; correlation_id?: string }, callbackUrl?: string): void {
    const base = { id: message.id, to: message.to, correlation_id: message.correlation_id };
    this.webhooks.send(callbackUrl, 'transactional.message.created', {
      ...message,
      fee: { amount: '0.009', currency: 'EUR' },
    });
    const failed = this.settings().undeliverableNumbers.includes(message.to);
    const timer = setTimeout(
      () =>
        this.webhooks.send(
          callbackUrl,
          failed ? 'transactional.message.failed' : 'transactional.message.delivered',
          failed
            ? { ...base, status: 'failed', reason: 'unknown_recipient' }
            : { ...base, status: 'delivered' },
        ),
      this.settings().deliveryDelayMs,
    );
    timer.unref();
  }
}
