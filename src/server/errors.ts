/**
 * How the service answers errors: routes and hooks throw, and {@link answerError}, the one error
 * handler, answers `{ code, message }` with the status the error table (src/errors) gives the code,
 * plus `retry_after_seconds` and `Retry-After` when the error says when to ask again, and
 * `nothing_sent` on a send that failed with no code sent.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { VerificationError } from '../client';
import { errorTable, statusOf, type ErrorCode } from '../errors';
import { describeIssues } from '../issues';

/** The body of every error answer. */
interface ErrorBody {
  code: ErrorCode;
  message: string;
  retry_after_seconds?: number;
  /** On a failed send: no code went out (see VerificationError.nothingSent). */
  nothing_sent?: true;
}

/** An error a route or hook throws to be answered with one of the service's own codes. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Sends `{ code, message }` with the code's status: for the router's errors, which no handler throws. */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(statusOf(code)).send({ code, message } satisfies ErrorBody);
}

/** Fastify's own refusals of a body, by its error code; any other of its 4xx is `invalid_request`. */
const frameworkCodes: Partial<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
};

/**
 * The error handler. A `pending` send keeps its own answer (202, the window to read). Another 4xx
 * error that is not the service's (a hook of the app the routes are mounted in, e.g. its own auth)
 * is passed on to the app's error handler, so that the app's answer stands; anything else unknown
 * is logged and answered 500 `internal`, without its message (it may quote a request).
 */
export function answerError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof VerificationError && error.code === 'pending') {
    return reply
      .code(statusOf('pending'))
      .send({ status: 'pending', id: error.windowId, message: error.message });
  }
  const answer = knownAnswer(error);
  if (answer === undefined) {
    if (error.statusCode && error.statusCode < 500) throw error;
    request.log.error({ err: error }, 'request failed');
    return sendError(reply, 'internal', 'internal error');
  }
  const body: ErrorBody = { code: answer.code, message: answer.message };
  if (answer.retryAfterSeconds !== undefined) {
    body.retry_after_seconds = answer.retryAfterSeconds;
    void reply.header('retry-after', String(answer.retryAfterSeconds));
  }
  if (answer.nothingSent) body.nothing_sent = true;
  return reply.code(statusOf(answer.code)).send(body);
}

/** An error answer before it is sent. */
interface Answer {
  code: ErrorCode;
  message: string;
  retryAfterSeconds?: number;
  nothingSent?: boolean;
}

/** The answer to an error of the service's own; undefined for any other. */
function knownAnswer(error: FastifyError): Answer | undefined {
  if (error instanceof VerificationError) {
    const { code, message, retryAfterSeconds, nothingSent } = error;
    return { code, message, retryAfterSeconds, nothingSent };
  }
  if (error instanceof ServiceError) return { code: error.code, message: error.message };
  if (hasZodFastifySchemaValidationErrors(error)) return validationAnswer(error);
  if (error.code?.startsWith('FST_ERR_') && error.statusCode && error.statusCode < 500) {
    return { code: frameworkCodes[error.code] ?? 'invalid_request', message: error.message };
  }
  return undefined;
}

/** The issue code a request schema's refinement carries to answer with its own error code. */
export interface ErrorCodeParams {
  code: ErrorCode;
}

/**
 * The answer to a request its route's schema refused, decided once for every route: a path parameter
 * that is not an ID of ours names nothing (`not_found`); a malformed `Idempotency-Key` header is
 * `invalid_idempotency_key`; a refinement may name its own code (`override_not_allowed`); anything
 * else is `invalid_request`, naming the problems as `path: message`.
 */
function validationAnswer(error: FastifyError): Answer {
  const issues = (error.validation ?? []).map((issue) => ({
    path: issue.instancePath.split('/').filter(Boolean),
    message: issue.message ?? 'invalid',
    ownCode: (issue.params as { params?: { code?: string } } | undefined)?.params?.code,
  }));
  const first = issues[0];
  switch (error.validationContext) {
    case 'params':
      return { code: 'not_found', message: 'no such window' };
    case 'headers':
      if (first?.path[0] === 'idempotency-key') {
        return { code: 'invalid_idempotency_key', message: first.message };
      }
      return { code: 'invalid_request', message: `header ${describeIssues(issues, 'headers')}` };
    default:
      if (first?.ownCode && first.ownCode in errorTable) {
        return { code: first.ownCode as ErrorCode, message: first.message };
      }
      return { code: 'invalid_request', message: describeIssues(issues) };
  }
}
