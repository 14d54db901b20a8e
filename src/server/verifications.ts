/**
 * The verification routes: start or resend, check, inspect, cancel. Each is a thin translation
 * between HTTP and the client helpers, in Prelude's words.
 */
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  cancelVerificationById,
  checkCode,
  forgetTarget,
  getVerificationById,
  startVerification,
  startVerificationRequestSchema,
  targetInputSchema,
  type VerificationClientOptions,
} from '../client';
import type { CheckCodeResult, SendCodeResult, VerificationState } from '../../workflows';
import { sendError, sendVerificationError } from './errors';
import { maskTarget } from './masking';
import { overridesNeedingLeave, refusedOverrides } from './overrides';

/** `POST /verifications/forget` body: the target whose every window and event is erased. */
export const forgetBodySchema = z.object({ target: targetInputSchema });

/** `POST /verifications/check` body. */
export const checkBodySchema = z.object({ target: targetInputSchema, code: z.string() });

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

/** Registers the verification routes. */
export async function verificationRoutes(
  app: FastifyInstance,
  {
    client,
    options,
    allowOverrides = [],
  }: { client: Client; options: VerificationClientOptions; allowOverrides?: readonly string[] },
): Promise<void> {
  const windowIdPattern =
    options.idKey === null ? /^verification-[^/]{1,330}$/ : /^verification-[0-9a-f]{32}$/;

  app.post('/verifications', async (request, reply) => {
    const body = startVerificationRequestSchema.safeParse(request.body);
    if (!body.success) return sendError(reply, 400, 'invalid_request', describeIssue(body.error));
    const refused = refusedOverrides(overridesNeedingLeave(body.data), allowOverrides);
    if (refused.length > 0) {
      return sendError(
        reply,
        400,
        'override_not_allowed',
        `not settable over HTTP unless the operator allows it (SERVICE_ALLOW_OVERRIDES): ${refused.join(', ')}`,
      );
    }
    try {
      const idempotencyKey = headerValue(request.headers['idempotency-key']);
      return startAnswer(await startVerification(client, { ...body.data, idempotencyKey }, options));
    } catch (error) {
      return sendVerificationError(reply, error);
    }
  });

  app.post('/verifications/check', async (request, reply) => {
    const body = checkBodySchema.safeParse(request.body);
    if (!body.success) return sendError(reply, 400, 'invalid_request', describeIssue(body.error));
    try {
      const idempotencyKey = headerValue(request.headers['idempotency-key']);
      const result = await checkCode(client, { ...body.data, idempotencyKey }, options);
      return checkAnswer(result.windowId, result);
    } catch (error) {
      return sendVerificationError(reply, error);
    }
  });

  app.post('/verifications/forget', async (request, reply) => {
    const body = forgetBodySchema.safeParse(request.body);
    if (!body.success) return sendError(reply, 400, 'invalid_request', describeIssue(body.error));
    try {
      const { targetKey, deleted } = await forgetTarget(client, body.data.target, options);
      return { status: 'forgotten', target_key: targetKey, deleted };
    } catch (error) {
      return sendVerificationError(reply, error);
    }
  });

  // Only window IDs: anything else is 404 before Temporal is asked (no other workflow is reachable).
  app.get<{ Params: { id: string } }>('/verifications/:id', async (request, reply) => {
    if (!windowIdPattern.test(request.params.id)) return sendError(reply, 404, 'not_found', 'no such window');
    try {
      return stateAnswer(await getVerificationById(client, request.params.id, options));
    } catch (error) {
      return sendVerificationError(reply, error);
    }
  });

  app.delete<{ Params: { id: string } }>('/verifications/:id', async (request, reply) => {
    if (!windowIdPattern.test(request.params.id)) return sendError(reply, 404, 'not_found', 'no such window');
    try {
      return stateAnswer(await cancelVerificationById(client, request.params.id, options));
    } catch (error) {
      return sendVerificationError(reply, error);
    }
  });
}

/** A header's value; a repeated one joined, so that a repeated key fails the key's format. */
function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/** The first zod issue, as `path: message`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid body';
}
