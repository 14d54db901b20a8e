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
  windowIdPattern,
  type VerificationClientOptions,
} from '../client';
import type { CheckCodeResult, SendCodeResult, VerificationState } from '../../workflows/messages';
import { VerificationError } from '../client/errors';
import { normalizeTarget } from '../prelude/targets';
import { guardErrorCodes } from '../guards/check';
import { regionOf } from '../guards/ranges';
import type { ServiceMetrics } from '../metrics';
import type { ErrorCodeParams } from './errors';
import { maskTarget } from './masking';
import { overridesNeedingLeave, refusedOverrides } from './overrides';
import {
  checkAnswerSchema,
  errorAnswers,
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

/**
 * The error answers of the routes that spend a send or a check, beyond their own 400. (Not 401: the
 * app that mounts the routes authenticates, and declares its own answer.)
 */
const spendingErrors = [
  'idempotency_key_reused',
  'premature_retry',
  'too_many_attempts',
  'too_many_checks',
  'target_rate_limited',
  'prelude_error',
  'prelude_unavailable',
  'unavailable',
] as const;

/** The refusals of a body by Fastify itself, before the route's schema. */
const bodyErrors = ['invalid_request', 'payload_too_large', 'unsupported_media_type'] as const;

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

/** What the window routes need. */
export interface WindowRouteOptions {
  client: Client;
  options: VerificationClientOptions;
  /** Start fields a caller may set beyond the safe ones (`SERVICE_ALLOW_OVERRIDES`; `*`: all). */
  allowOverrides?: readonly string[];
  /** Where sends the guards refused or flagged are counted; absent: not counted (still logged). */
  metrics?: ServiceMetrics;
}

/**
 * Registers the routes on verification windows. A helper's VerificationError reaches the scope's
 * error handler, which answers it by the error table.
 */
export async function windowRoutes(
  app: FastifyInstance,
  { client, options, allowOverrides = [], metrics }: WindowRouteOptions,
): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
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
        operationId: 'sendCode',
        summary: 'Send a code: open a window, or resend in the open one',
        description:
          'With no open window for the target, a window opens and Prelude sends the first code; with one, ' +
          'the code is sent again (after the resend cooldown). Every answer about a target without an open ' +
          'window looks the same.',
        tags: ['verifications'],
        headers: idempotencyHeaders,
        body: startBody,
        response: {
          200: startAnswerSchema,
          202: pendingAnswerSchema,
          ...errorAnswers(
            ...bodyErrors,
            'invalid_idempotency_key',
            'override_not_allowed',
            ...spendingErrors,
            ...guardErrorCodes,
          ),
        },
      },
    },
    async (request, reply) => {
      // What the guards refused or flagged, for the operator: counted and logged by reason and
      // country, never with the number, the IP or the device.
      const countryOfBody = () => {
        const target = request.body.target;
        return target.type === 'phone_number' ? regionOf(normalizeTarget(target).value) : 'none';
      };
      try {
        const result = await spend(request, reply, startVerification);
        for (const reason of result.guard?.flags ?? []) {
          metrics?.sendsFlagged.inc({ reason, country: result.guard!.country! });
          request.log.warn({ reason, country: result.guard!.country }, 'send flagged by a guard');
        }
        return startAnswer(result);
      } catch (error) {
        if (
          error instanceof VerificationError &&
          (guardErrorCodes as readonly string[]).includes(error.code)
        ) {
          const country = countryOfBody();
          metrics?.sendsRefused.inc({ reason: error.code, country });
          request.log.warn({ reason: error.code, country }, 'send refused by a guard');
        }
        throw error;
      }
    },
  );

  routes.post(
    '/verifications/check',
    {
      schema: {
        operationId: 'checkCode',
        summary: 'Check a code the user typed',
        description:
          'Checks the code against the open window of the target and answers at once: verified, wrong code ' +
          '(with the checks left), or no open window.',
        tags: ['verifications'],
        headers: idempotencyHeaders,
        body: checkBodySchema,
        response: {
          200: checkAnswerSchema,
          ...errorAnswers(...bodyErrors, 'invalid_code', 'invalid_idempotency_key', ...spendingErrors),
        },
      },
    },
    async (request, reply) => {
      const result = await spend(request, reply, checkCode);
      return checkAnswer(result.windowId, result);
    },
  );

  routes.post(
    '/verifications/forget',
    {
      schema: {
        operationId: 'forgetTarget',
        summary: 'Erase a target: every window and webhook event Temporal holds about it',
        description:
          "Deletes the target's windows, open or closed, and the webhook events about them. Its per-target " +
          'limits stay (they hold only times): forgetting does not reset them.',
        tags: ['verifications'],
        body: forgetBodySchema,
        response: {
          200: forgetAnswerSchema,
          ...errorAnswers(...bodyErrors, 'unavailable'),
        },
      },
    },
    async (request) => {
      const { targetKey, deleted } = await forgetTarget(client, request.body.target, options);
      return { status: 'forgotten' as const, target_key: targetKey, deleted };
    },
  );

  // The routes on one window by its ID. Only window IDs: anything else is 404 before Temporal is
  // asked (no other workflow is reachable).
  const windowRoute = (operationId: string, summary: string, description: string, answer: string) => ({
    schema: {
      operationId,
      summary,
      description,
      tags: ['verifications'],
      params: windowParams(windowIdPattern(options.idKey)),
      response: {
        200: windowSchema.describe(answer),
        ...errorAnswers('not_found', 'unavailable'),
      },
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
    windowRoute(
      'getVerification',
      "A window's state, its target masked",
      'Attempts with their channel and delivery status, checks used and left, deadline and outcome.',
      'the window',
    ),
    async (request, reply) => windowState(request, reply, getVerificationById),
  );
  routes.delete(
    '/verifications/:id',
    windowRoute(
      'cancelVerification',
      'Cancel an open window',
      'Closes the open window as `canceled`: no code of it is accepted any more. `not_found` when no window is open.',
      'the canceled window',
    ),
    async (request, reply) => windowState(request, reply, cancelVerificationById),
  );
}
