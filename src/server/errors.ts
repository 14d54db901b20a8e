import type { FastifyError, FastifyReply } from 'fastify';
import { VerificationError, type VerificationErrorCode } from '../client';
import { describeIssues } from '../issues';

/** The body of every error answer. */
export interface ErrorBody {
  code: string;
  message: string;
  retry_after_seconds?: number;
}

/** Sends `{ code, message }` with a status. */
export function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ code, message } satisfies ErrorBody);
}

const statusOf: Record<VerificationErrorCode, number> = {
  premature_retry: 429,
  too_many_attempts: 429,
  target_rate_limited: 429,
  too_many_checks: 429,
  invalid_code: 400,
  invalid_request: 400,
  invalid_idempotency_key: 400,
  idempotency_key_reused: 422,
  not_found: 404,
  prelude_unavailable: 503,
  prelude_error: 502,
  unavailable: 503,
  pending: 202,
};

/** Answers a helper's VerificationError with its HTTP status; anything else is rethrown (→ 500). */
export function sendVerificationError(reply: FastifyReply, error: unknown): FastifyReply {
  if (!(error instanceof VerificationError)) throw error;
  if (error.code === 'pending') {
    return reply.code(202).send({ status: 'pending', id: error.windowId, message: error.message });
  }
  const body: ErrorBody = { code: error.code, message: error.message };
  if (error.retryAfterSeconds !== undefined) {
    body.retry_after_seconds = error.retryAfterSeconds;
    void reply.header('retry-after', String(error.retryAfterSeconds));
  }
  return reply.code(statusOf[error.code]).send(body);
}

/** The issue code a request schema's refinement carries to answer with its own error code. */
export interface ErrorCodeParams {
  code: string;
}

/**
 * The answer to a request its route's schema refused, decided once for every route: a path parameter
 * that is not an ID of ours names nothing (404 `not_found`); a malformed `Idempotency-Key` header is
 * `invalid_idempotency_key`; a refinement may name its own code (`override_not_allowed`); anything
 * else is `invalid_request`, naming the problems as `path: message`.
 */
export function validationAnswer(error: FastifyError): { status: number; code: string; message: string } {
  const issues = (error.validation ?? []).map((issue) => ({
    path: issue.instancePath.split('/').filter(Boolean),
    message: issue.message ?? 'invalid',
    ownCode: (issue.params as { params?: Partial<ErrorCodeParams> } | undefined)?.params?.code,
  }));
  const first = issues[0];
  switch (error.validationContext) {
    case 'params':
      return { status: 404, code: 'not_found', message: 'no such window' };
    case 'headers':
      if (first?.path[0] === 'idempotency-key') {
        return { status: 400, code: 'invalid_idempotency_key', message: first.message };
      }
      return { status: 400, code: 'invalid_request', message: `header ${describeIssues(issues, 'headers')}` };
    default:
      if (first?.ownCode) return { status: 400, code: first.ownCode, message: first.message };
      return { status: 400, code: 'invalid_request', message: describeIssues(issues) };
  }
}
