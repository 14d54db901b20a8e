/**
 * The verification routes: start or resend, check, inspect, cancel, forget. Each declares its request
 * and every answer as schemas (Fastify validates and serialises through them, the reference page is
 * generated from them) and is a thin translation between HTTP and the client helpers, in Prelude's words.
 */
import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  cancelVerificationById,
  checkCode,
  forgetTarget,
  getVerificationById,
  idempotencyKeySchema,
  startVerification,
  startVerificationRequestSchema,
  targetInputSchema,
  type VerificationClientOptions,
} from '../client';
import type { CheckCodeResult, SendCodeResult, VerificationState } from '../../workflows/messages';
import { sendVerificationError, type ErrorCodeParams } from './errors';
import { maskTarget } from './masking';
import { overridesNeedingLeave, refusedOverrides } from './overrides';
import {
  checkAnswerSchema,
  errorAnswer,
  forgetAnswerSchema,
  pendingAnswerSchema,
  startAnswerSchema,
  windowSchema,
} from './schemas';

/** `POST /verifications/forget` body: the target whose every window and event is erased. */
export const forgetBodySchema = z.object({ target: targetInputSchema });

/** `POST /verifications/check` body. */
export const checkBodySchema = z.object({
  target: targetInputSchema,
  code: z.string().describe('the code the user typed: 4 to 8 letters or digits'),
});

/** The `Idempotency-Key` header of the routes that spend something. */
const idempotencyHeaders = z.looseObject({
  'idempotency-key': idempotencyKeySchema
    .optional()
    .describe(
      'a retry with the same key and request gets the first answer and spends nothing; the key with another request is 422',
    ),
});

/** A window ID in the path. */
const windowParams = (pattern: RegExp) =>
  z.object({ id: z.string().regex(pattern).describe('a window ID, as POST /verifications answered it') });

const unauthorized = errorAnswer('`unauthorized`: a valid bearer token is required');
const unavailable = errorAnswer(
  '`unavailable` (Temporal or a worker did not answer in time), `prelude_unavailable`',
);
const tooMany = errorAnswer(
  '`premature_retry`, `too_many_attempts`, `too_many_checks`, `target_rate_limited`, with `retry_after_seconds`',
);
const keyReused = errorAnswer('`idempotency_key_reused`: this Idempotency-Key was used for another request');
const preludeError = errorAnswer('`prelude_error`: Prelude refused the request');
const noWindow = errorAnswer('`not_found`: no such window');

/** The error answers of the routes that spend a send or a check, beyond their own 400. */
const spendingErrors = {
  401: unauthorized,
  422: keyReused,
  429: tooMany,
  502: preludeError,
  503: unavailable,
};

/** Runs a route's work, answering a helper's VerificationError with its HTTP status. */
async function answering<T>(reply: FastifyReply, work: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await work();
  } catch (error) {
    return sendVerificationError(reply, error);
  }
}

/** `POST /verifications` answer. */
export function startAnswer(result: SendCodeResult) {
  return {
    id: result.windowId,
    status: result.status,
    verification_id: result.verificationId,
    expires_at: result.expiresAt,
    attempts: result.sendsUsed,
    next_resend_at: result.nextResendAt,
    ...(result.reason ? { reason: result.reason } : {}),
    ...(result.riskFactors?.length ? { risk_factors: result.riskFactors } : {}),
  };
}

/** `POST /verifications/check` answer. */
export function checkAnswer(windowId: string, result: CheckCodeResult) {
  return {
    status: result.status,
    ...(result.status === 'expired_or_not_found' ? {} : { id: windowId, checks_left: result.checksLeft }),
    ...(result.verificationId ? { verification_id: result.verificationId } : {}),
  };
}

/** `GET /verifications/:id` answer: the window with its target masked. */
export function stateAnswer(state: VerificationState) {
  return {
    id: state.windowId,
    target: maskTarget(state.target),
    status: state.outcome,
    verification_id: state.verificationId,
    method: state.method,
    prediction: state.prediction,
    ...(state.inferred ? { inferred: state.inferred } : {}),
    ...(state.targetUsage
      ? {
          target_limits: {
            windows_left: state.targetUsage.windowsLeft,
            sends_left: state.targetUsage.sendsLeft,
            next_release_at: state.targetUsage.nextReleaseAt,
          },
        }
      : {}),
    reason: state.reason,
    risk_factors: state.riskFactors,
    attempts: state.attempts.map((a) => ({
      number: a.number,
      trigger: a.trigger,
      channel: a.channel,
      sent_at: a.sentAt,
      attempt_id: a.attemptId,
      delivery_status: a.deliveryStatus,
      delivery_updated_at: a.deliveryUpdatedAt,
    })),
    sends_left: state.sendsLeft,
    next_resend_at: state.nextResendAt,
    checks_used: state.checksUsed,
    checks_left: state.checksLeft,
    opened_at: state.openedAt,
    expires_at: state.expiresAt,
    closed_at: state.closedAt,
  };
}

/** What the verification routes need. */
export interface VerificationRouteOptions {
  client: Client;
  options: VerificationClientOptions;
  /** Start fields a caller may set beyond the safe ones (`SERVICE_ALLOW_OVERRIDES`; `*`: all). */
  allowOverrides?: readonly string[];
}

/** Registers the verification routes. */
export async function verificationRoutes(
  app: FastifyInstance,
  { client, options, allowOverrides = [] }: VerificationRouteOptions,
): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const windowIdPattern =
    options.idKey === null ? /^verification-[^/]{1,330}$/ : /^verification-[0-9a-f]{32}$/;
  // Window IDs hold the target in plaintext mode: they go into logs only when they are opaque.
  const logWindow = (request: FastifyRequest, reply: FastifyReply, windowId: string) => {
    if (options.idKey === null) return;
    request.log = request.log.child({ windowId });
    reply.log = request.log;
  };

  // The routes that spend a send or a check: the helper gets the body and the Idempotency-Key, and
  // the window it answers about goes into the request's logs.
  const spend = async <Body, Result extends { windowId: string }>(
    request: FastifyRequest & { body: Body; headers: { 'idempotency-key'?: string } },
    reply: FastifyReply,
    helper: (
      client: Client,
      request: Body & { idempotencyKey?: string },
      options: VerificationClientOptions,
    ) => Promise<Result>,
  ): Promise<Result> => {
    const idempotencyKey = request.headers['idempotency-key'];
    const result = await helper(client, { ...request.body, idempotencyKey }, options);
    logWindow(request, reply, result.windowId);
    return result;
  };

  // Refused as a problem of the body, after its shape and before anything else, as a caller expects.
  const startBody = startVerificationRequestSchema
    .omit({ idempotencyKey: true })
    .superRefine((body, ctx) => {
      const refused = refusedOverrides(overridesNeedingLeave(body), allowOverrides);
      if (refused.length === 0) return;
      ctx.addIssue({
        code: 'custom',
        message: `not settable over HTTP unless the operator allows it (SERVICE_ALLOW_OVERRIDES): ${refused.join(', ')}`,
        params: { code: 'override_not_allowed' } satisfies ErrorCodeParams,
      });
    })
    .describe(
      'the target, and optionally Prelude signals and options; `policy` and the options that change security ' +
        'or cost are refused (400 override_not_allowed) unless the operator allows them',
    );

  routes.post(
    '/verifications',
    {
      schema: {
        summary: 'Send a code: open a window, or resend in the open one',
        tags: ['verifications'],
        headers: idempotencyHeaders,
        body: startBody,
        response: {
          200: startAnswerSchema,
          202: pendingAnswerSchema,
          400: errorAnswer(
            '`invalid_request`, `invalid_idempotency_key`, `override_not_allowed`: nothing was sent',
          ),
          ...spendingErrors,
        },
      },
    },
    async (request, reply) =>
      answering(reply, async () => startAnswer(await spend(request, reply, startVerification))),
  );

  routes.post(
    '/verifications/check',
    {
      schema: {
        summary: 'Check a code the user typed',
        tags: ['verifications'],
        headers: idempotencyHeaders,
        body: checkBodySchema,
        response: {
          200: checkAnswerSchema,
          400: errorAnswer('`invalid_request`, `invalid_code`, `invalid_idempotency_key`'),
          ...spendingErrors,
        },
      },
    },
    async (request, reply) =>
      answering(reply, async () => {
        const result = await spend(request, reply, checkCode);
        return checkAnswer(result.windowId, result);
      }),
  );

  routes.post(
    '/verifications/forget',
    {
      schema: {
        summary: 'Erase a target: every window and webhook event Temporal holds about it',
        tags: ['verifications'],
        body: forgetBodySchema,
        response: {
          200: forgetAnswerSchema,
          400: errorAnswer('`invalid_request`'),
          401: unauthorized,
          503: unavailable,
        },
      },
    },
    async (request, reply) =>
      answering(reply, async () => {
        const { targetKey, deleted } = await forgetTarget(client, request.body.target, options);
        return { status: 'forgotten' as const, target_key: targetKey, deleted };
      }),
  );

  // The routes on one window by its ID. Only window IDs: anything else is 404 before Temporal is
  // asked (no other workflow is reachable).
  const windowRoute = (summary: string, answer: string) => ({
    schema: {
      summary,
      tags: ['verifications'],
      params: windowParams(windowIdPattern),
      response: { 200: windowSchema.describe(answer), 401: unauthorized, 404: noWindow, 503: unavailable },
    },
  });
  const windowState = async (
    request: FastifyRequest & { params: { id: string } },
    reply: FastifyReply,
    helper: typeof getVerificationById,
  ) => {
    logWindow(request, reply, request.params.id);
    return stateAnswer(await helper(client, request.params.id, options));
  };

  routes.get(
    '/verifications/:id',
    windowRoute("A window's state, its target masked", 'the window'),
    async (request, reply) => answering(reply, () => windowState(request, reply, getVerificationById)),
  );
  routes.delete(
    '/verifications/:id',
    windowRoute('Cancel an open window', 'the canceled window'),
    async (request, reply) => answering(reply, () => windowState(request, reply, cancelVerificationById)),
  );
}
