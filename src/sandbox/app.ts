/**
 * The sandbox's HTTP surface: Prelude's v2 routes (with its auth, error body and fault knobs) and
 * the `/sandbox/*` control routes (settings, clock, inbox, call log, webhook key and log,
 * templates).
 *
 * `GET /v2/verification/phone/history/{id}` (the History API) takes the same auth and faults as the
 * other Prelude routes, but is a read: never dropped, not in the call log. With the `historyApi`
 * setting off it answers 404 `not_found`, as for an account without access to it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  checkVerificationRequestSchema,
  createVerificationRequestSchema,
  e164Pattern,
  emailPattern,
  eventsRequestSchema,
  feedbackRequestSchema,
  notifyBatchRequestSchema,
  notifySendRequestSchema,
  predictRequestSchema,
  type Target,
} from '../prelude';
import { trackUnusedConnections } from '../graceful-close';
import { describeZodError } from '../issues';
import type { CallLog } from './calls';
import type { SandboxClock } from './clock';
import { newId, newRequestId } from './ids';
import type { Inbox } from './inbox';
import type { NotifyEngine } from './notify-engine';
import { templateSchema } from './notify-engine';
import {
  applySettingsUpdate,
  publicSettings,
  settingsUpdateSchema,
  takeAnswerDrop,
  takeCallFailure,
  takeCut,
  type DroppableOperation,
  type SandboxSettings,
} from './settings';
import type { EngineAnswer, VerifyEngine } from './verify-engine';
import type { WebhookDispatcher } from './webhooks';

/** What the routes work on. */
export interface SandboxParts {
  settings: SandboxSettings;
  verify: VerifyEngine;
  notify: NotifyEngine;
  inbox: Inbox;
  calls: CallLog;
  clock: SandboxClock;
  webhooks: WebhookDispatcher;
  publicKeyPem: string;
}

/** Prelude's error body `{ code, message, type, request_id }`. */
function errorBody(status: number, code: string, message: string): Record<string, unknown> {
  const type =
    status === 401
      ? 'unauthorized'
      : status === 404
        ? 'not_found'
        : status === 429
          ? 'too_many_requests'
          : status >= 500
            ? 'internal_error'
            : 'bad_request';
  return { code, message, type, request_id: newRequestId() };
}

function preludeError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send(errorBody(status, code, message));
}

/** An engine's answer as it goes on the wire, with a fresh `request_id` as Prelude puts on every answer. */
function wireAnswer(result: EngineAnswer): {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
} {
  if (result.status === 200)
    return { status: 200, body: { ...result.body, request_id: newRequestId() }, headers: {} };
  return {
    status: result.status,
    body: errorBody(result.status, result.code, result.message),
    headers:
      result.retryAfterSeconds === undefined ? {} : { 'retry-after': String(result.retryAfterSeconds) },
  };
}

/** The furthest one `POST /sandbox/clock/advance` moves the clock: a year. */
const maxAdvanceSeconds = 366 * 86_400;

/** Body of `POST /sandbox/clock/advance`: how far to move the sandbox's time, in seconds or in ms. */
const clockAdvanceSchema = z.union([
  z.object({ seconds: z.number().min(0).max(maxAdvanceSeconds) }).strict(),
  z
    .object({
      ms: z
        .number()
        .int()
        .min(0)
        .max(maxAdvanceSeconds * 1000),
    })
    .strict(),
]);

/** The Prelude code for a request that failed its schema, by the field at fault. */
function validationCode(issue: z.core.$ZodIssue | undefined, body: unknown): string {
  const path = issue?.path.join('.') ?? '';
  const targetType = (body as { target?: { type?: string } } | undefined)?.target?.type;
  if (path.startsWith('target'))
    return targetType === 'email_address' ? 'invalid_email_address' : 'invalid_phone_number';
  if (path === 'options.code_size') return 'invalid_code_size';
  if (path === 'options.custom_code') return 'invalid_custom_code';
  if (path === 'metadata.correlation_id') return 'invalid_correlation_id';
  if (path === 'dispatch_id') return 'invalid_dispatch_id';
  if (issue?.message.includes('custom_code and code_size')) return 'custom_size_conflict';
  return 'invalid_request';
}

function validTarget(target: Target): boolean {
  return target.type === 'phone_number' ? e164Pattern.test(target.value) : emailPattern.test(target.value);
}

function refuseTarget(reply: FastifyReply, target: Target): FastifyReply {
  return target.type === 'phone_number'
    ? preludeError(
        reply,
        400,
        'invalid_phone_number',
        'the provided phone number is invalid; provide a valid E.164 number',
      )
    : preludeError(reply, 400, 'invalid_email_address', 'the provided e-mail address is invalid');
}

/** Parses a body with a Prelude request schema, or answers 400 with Prelude's code. */
function parse<S extends z.ZodType>(schema: S, body: unknown, reply: FastifyReply): z.output<S> | undefined {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  void preludeError(reply, 400, validationCode(result.error.issues[0], body), describeZodError(result.error));
  return undefined;
}

/** Prelude failing on its side: nothing is carried out. */
function simulatedServerError(reply: FastifyReply): FastifyReply {
  return preludeError(reply, 500, 'internal', 'simulated server error');
}

/** Builds the sandbox's HTTP server. */
export function buildSandboxApp(parts: SandboxParts, options: { logger?: boolean } = {}): FastifyInstance {
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 4 << 20 });
  trackUnusedConnections(app.server);
  const { verify, notify, inbox, calls, clock, webhooks } = parts;
  /** When each Prelude API request arrived (before any simulated latency), for the call log. */
  const arrivals = new WeakMap<FastifyRequest, string>();

  /**
   * Answers a Verify call or a Notify send the engine carried out, and logs it; or, when the
   * settings say this answer is lost, closes the connection without a byte, as a crash or a
   * network cut after Prelude processed the request would.
   */
  const deliver = (
    request: FastifyRequest,
    reply: FastifyReply,
    operation: DroppableOperation,
    target: Target,
    result: EngineAnswer,
  ): FastifyReply => {
    const { status, body, headers } = wireAnswer(result);
    const dropped = takeAnswerDrop(parts.settings, operation);
    calls.add({
      operation,
      target,
      receivedAt: arrivals.get(request) ?? clock.iso(),
      status,
      answer: body,
      dropped,
    });
    if (dropped) {
      reply.hijack();
      request.raw.socket.destroy();
      return reply;
    }
    return reply.code(status).headers(headers).send(body);
  };

  /** A call cut on its way in: the caller sees its connection closed, and nothing was carried out. */
  const cutOnItsWayIn = (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    reply.hijack();
    request.raw.socket.destroy();
    return reply;
  };

  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) =>
    preludeError(
      reply,
      error.statusCode && error.statusCode < 500 ? error.statusCode : 500,
      'invalid_request',
      error.message,
    ),
  );

  void app.register(async (v2) => {
    // Faults and auth apply to the Prelude API only, never to the control routes.
    v2.addHook('onRequest', async (request, reply) => {
      arrivals.set(request, clock.iso());
      const { settings } = parts;
      // On the way in: a client that gives up during it leaves nothing carried out.
      if (settings.latencyMs > 0) await sleep(settings.latencyMs);
      const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      if (!bearer || (settings.apiKey !== undefined && bearer !== settings.apiKey)) {
        return preludeError(reply, 401, 'invalid_api_key', 'the API key is missing or invalid');
      }
      if (Math.random() < settings.errorRate) return simulatedServerError(reply);
      if (Math.random() < settings.rateLimitRate) {
        void reply.header('retry-after', '1');
        return preludeError(reply, 429, 'rate_limited', 'simulated rate limit');
      }
    });
    // Prelude's own time, once it has the whole request: the call is carried out after it even when
    // its client has given up, as a slow call past the client's timeout is in production.
    v2.addHook('preHandler', async () => {
      const processingMs = Math.random() * parts.settings.processingMs;
      if (processingMs > 0) await sleep(processingMs);
    });

    v2.post('/v2/verification', async (request, reply) => {
      const body = parse(createVerificationRequestSchema, request.body, reply);
      if (!body) return reply;
      if (!validTarget(body.target)) return refuseTarget(reply, body.target);
      if (takeCallFailure(parts.settings, 'verification.create')) return simulatedServerError(reply);
      if (takeCut(parts.settings, 'verification.create')) return cutOnItsWayIn(request, reply);
      return deliver(request, reply, 'verification.create', body.target, verify.create(body));
    });

    v2.post('/v2/verification/check', async (request, reply) => {
      const body = parse(checkVerificationRequestSchema, request.body, reply);
      if (!body) return reply;
      if (!validTarget(body.target)) return refuseTarget(reply, body.target);
      if (takeCallFailure(parts.settings, 'verification.check')) return simulatedServerError(reply);
      if (takeCut(parts.settings, 'verification.check')) return cutOnItsWayIn(request, reply);
      return deliver(request, reply, 'verification.check', body.target, verify.check(body));
    });

    // A read: neither droppable nor in the call log, whose counts (creates, checks, sends) tests assert.
    v2.get<{ Params: { id: string } }>('/v2/verification/phone/history/:id', async (request, reply) => {
      if (!parts.settings.historyApi) {
        return preludeError(reply, 404, 'not_found', 'the History API is not enabled for this account');
      }
      const record = verify.history(request.params.id);
      if (!record) return preludeError(reply, 404, 'not_found', 'no phone verification has this id');
      return reply.send({ ...record, request_id: newRequestId() });
    });

    v2.post('/v2/watch/predict', async (request, reply) => {
      const body = parse(predictRequestSchema, request.body, reply);
      if (!body) return reply;
      if (!validTarget(body.target)) return refuseTarget(reply, body.target);
      const suspicious = parts.settings.suspiciousNumbers.includes(body.target.value);
      return reply.send({
        id: newId('prd'),
        prediction: suspicious ? 'suspicious' : 'legitimate',
        ...(suspicious ? { risk_factors: ['fraud_database'] } : {}),
        request_id: newRequestId(),
      });
    });

    for (const [path, schema] of [
      ['/v2/watch/feedback', feedbackRequestSchema],
      ['/v2/watch/event', eventsRequestSchema],
    ] as const) {
      v2.post(path, async (request, reply) => {
        if (!parse(schema, request.body, reply)) return reply;
        return reply.send({ status: 'success', request_id: newRequestId() });
      });
    }

    v2.post('/v2/notify', async (request, reply) => {
      const body = parse(notifySendRequestSchema, request.body, reply);
      if (!body) return reply;
      if (takeCallFailure(parts.settings, 'notify.send')) return simulatedServerError(reply);
      const outcome = notify.send(body);
      // Logged and droppable like a Verify create: a send whose answer is lost still sent its message.
      return deliver(
        request,
        reply,
        'notify.send',
        { type: 'phone_number', value: body.to },
        outcome.ok
          ? { status: 200, body: { ...outcome.message } }
          : { status: 400, code: outcome.error.code, message: outcome.error.message },
      );
    });

    v2.post('/v2/notify/batch', async (request, reply) => {
      const to = (request.body as { to?: unknown } | undefined)?.to;
      if (Array.isArray(to) && to.length === 0) return preludeError(reply, 400, 'empty_batch', 'to is empty');
      if (Array.isArray(to) && to.length > 1000) {
        return preludeError(reply, 400, 'batch_size_exceeded', 'a batch holds at most 1000 recipients');
      }
      // Recipients are checked one by one: a bad number fails its own result, not the request.
      const body = parse(notifyBatchRequestSchema.omit({ to: true }), request.body, reply);
      if (!body) return reply;
      const outcome = notify.sendBatch({ ...body, to: (to as unknown[]).map(String) });
      if (!outcome.ok) return preludeError(reply, 400, outcome.error.code, outcome.error.message);
      return reply.send({ ...outcome.body, request_id: newRequestId() });
    });

    const phoneBody = (body: unknown, reply: FastifyReply): string | undefined => {
      const phone = (body as { phone_number?: unknown } | undefined)?.phone_number;
      if (typeof phone === 'string' && e164Pattern.test(phone)) return phone;
      void preludeError(reply, 400, 'invalid_phone_number', 'phone_number must be E.164');
      return undefined;
    };

    v2.put('/v2/verification/management/phone-numbers/sandbox', async (request, reply) => {
      const phone = phoneBody(request.body, reply);
      if (!phone) return reply;
      const code = (request.body as { attempt_code?: unknown }).attempt_code;
      if (typeof code !== 'string' || !/^[A-Za-z0-9]{4,8}$/.test(code)) {
        return preludeError(reply, 400, 'invalid_custom_code', 'attempt_code is 4 to 8 letters or digits');
      }
      verify.addSandboxNumber(phone, code);
      return reply.send({ phone_number: phone, attempt_code: code });
    });
    v2.get('/v2/verification/management/phone-numbers/sandbox', async () => ({
      phone_numbers: [...verify.sandboxNumbers].map(([phone_number, v]) => ({ phone_number, ...v })),
    }));
    v2.delete<{ Params: { phone: string } }>(
      '/v2/verification/management/phone-numbers/sandbox/:phone',
      async (request) => {
        verify.sandboxNumbers.delete(request.params.phone);
        return { phone_number: request.params.phone };
      },
    );

    for (const [name, list] of [
      ['allow', verify.allowList],
      ['block', verify.blockList],
    ] as const) {
      const path = `/v2/verification/management/phone-numbers/${name}`;
      v2.post(path, async (request, reply) => {
        const phone = phoneBody(request.body, reply);
        if (!phone) return reply;
        verify.listNumber(name, phone);
        return reply.send({ phone_number: phone });
      });
      v2.get(path, async () => ({
        phone_numbers: [...list].map(([phone_number, created_at]) => ({ phone_number, created_at })),
      }));
      v2.delete(path, async (request, reply) => {
        const phone = phoneBody(request.body, reply);
        if (!phone) return reply;
        list.delete(phone);
        return reply.send({ phone_number: phone });
      });
    }
  });

  app.get('/sandbox/config', async () => publicSettings(parts.settings));
  app.put('/sandbox/config', async (request, reply) => {
    const update = settingsUpdateSchema.safeParse(request.body);
    if (!update.success) {
      return reply.code(400).send({ code: 'invalid_config', message: describeZodError(update.error) });
    }
    applySettingsUpdate(parts.settings, update.data);
    return publicSettings(parts.settings);
  });

  app.get('/sandbox/clock', async () => clock.toJSON());
  app.post('/sandbox/clock/advance', async (request, reply) => {
    const advance = clockAdvanceSchema.safeParse(request.body);
    if (!advance.success) {
      return reply.code(400).send({
        code: 'invalid_clock_advance',
        message: 'give { "seconds": n } or { "ms": n }, n ≥ 0: the clock only moves forward',
      });
    }
    clock.advance('ms' in advance.data ? advance.data.ms : advance.data.seconds * 1000);
    return clock.toJSON();
  });

  app.get<{ Querystring: { to?: string } }>('/sandbox/messages', async (request) => ({
    messages: inbox.list(request.query.to),
  }));
  app.delete('/sandbox/messages', async (_request, reply) => {
    inbox.clear();
    return reply.code(204).send();
  });

  app.get<{ Querystring: { to?: string; operation?: string } }>('/sandbox/calls', async (request) => ({
    calls: calls.list({ to: request.query.to, operation: request.query.operation }),
  }));
  app.delete('/sandbox/calls', async (_request, reply) => {
    calls.clear();
    return reply.code(204).send();
  });

  app.get('/sandbox/webhook-public-key', async (_request, reply) =>
    reply.type('application/x-pem-file').send(parts.publicKeyPem),
  );
  app.get('/sandbox/webhooks', async () => ({ deliveries: webhooks.log() }));

  app.get('/sandbox/templates', async () => ({ templates: [...notify.templates.values()] }));
  app.put('/sandbox/templates', async (request, reply) => {
    const template = templateSchema.safeParse(request.body);
    if (!template.success)
      return reply.code(400).send({ code: 'invalid_template', message: describeZodError(template.error) });
    notify.templates.set(template.data.id, template.data);
    return template.data;
  });

  return app;
}
