/**
 * The one table of errors: which failure a window or an activity reports, which code a caller gets
 * for it, the HTTP status the service answers that code with, and what the code means (the OpenAPI
 * document's words). Plain data, with no I/O: the client helpers, the activities and the service
 * read it, and nothing else decides a code or a status.
 */
import type { PreludeErrorKind } from '../prelude/errors';
import { guardRefusal } from '../../workflows/send-guard-messages';
import { rejection } from '../../workflows/verification-messages';

/** What the table says about one error code. */
export interface ErrorEntry {
  /** The HTTP status the service answers with. */
  readonly status: number;
  /** What it means for a caller, as the OpenAPI document says it. */
  readonly description: string;
  /** The failure types (`ApplicationFailure.type`) of the window and its activities that mean this. */
  readonly failureTypes?: readonly string[];
  /** The answer carries `retry_after_seconds` and a `Retry-After` header. */
  readonly retryAfter?: true;
}

/** The failure type an activity reports for a failed Prelude call of that kind. */
export function preludeFailureType(kind: PreludeErrorKind): string {
  return `Prelude.${kind}`;
}

/**
 * The codes of the client helpers' `VerificationError`, which the service answers too. Any failure
 * type not listed here is `prelude_unavailable`: the window reports what its activities could not do.
 */
export const verificationErrors = {
  premature_retry: {
    status: 429,
    description: 'a resend before the cooldown ended',
    failureTypes: [rejection.prematureRetry],
    retryAfter: true,
  },
  too_many_attempts: {
    status: 429,
    description: 'every send of the window is used',
    failureTypes: [rejection.tooManyAttempts],
  },
  target_rate_limited: {
    status: 429,
    description: 'the target used its windows or sends across windows for the period',
    failureTypes: [rejection.targetRateLimited],
    retryAfter: true,
  },
  country_not_allowed: {
    status: 403,
    description:
      'codes are not sent to numbers of this country (GUARD_COUNTRIES): nothing was written or sent',
  },
  country_budget_exhausted: {
    status: 429,
    description: "the country's SMS budget or burst limit is used for now; other countries are unaffected",
    failureTypes: [guardRefusal.countryBudget],
    retryAfter: true,
  },
  ip_rate_limited: {
    status: 429,
    description: 'too many sends from this IP address (signals.ip) for the period',
    failureTypes: [guardRefusal.ip],
    retryAfter: true,
  },
  device_rate_limited: {
    status: 429,
    description: 'too many sends from this device (signals.device_id) for the period',
    failureTypes: [guardRefusal.device],
    retryAfter: true,
  },
  number_block_velocity: {
    status: 429,
    description: 'too many different numbers of this number range were sent codes within minutes',
    failureTypes: [guardRefusal.block],
    retryAfter: true,
  },
  too_many_checks: {
    status: 429,
    description: 'every check of the window is used',
    failureTypes: [rejection.tooManyChecks],
  },
  invalid_code: {
    status: 400,
    description: 'the code is not 4 to 8 letters or digits',
    failureTypes: [rejection.invalidCode],
  },
  invalid_request: {
    status: 400,
    description: 'the request is malformed, or Prelude refused it as such: nothing was sent',
    failureTypes: [preludeFailureType('invalid_request')],
  },
  invalid_idempotency_key: {
    status: 400,
    description: 'the Idempotency-Key is not 1 to 255 of `A-Z a-z 0-9 . _ : -`',
  },
  idempotency_key_reused: {
    status: 422,
    description: 'this Idempotency-Key was used for another request',
    failureTypes: [rejection.idempotencyKeyReused],
  },
  not_found: {
    status: 404,
    description: 'no such window, or none open',
    failureTypes: [rejection.windowClosed],
  },
  prelude_unavailable: {
    status: 503,
    description: 'Prelude could not be reached, or kept failing, within the retries',
  },
  prelude_error: {
    status: 502,
    description: 'Prelude refused our credentials or the call outright',
    failureTypes: [preludeFailureType('auth'), preludeFailureType('invalid_response')],
  },
  unavailable: {
    status: 503,
    description: 'Temporal or a worker did not answer in time',
  },
  pending: {
    status: 202,
    description: 'the deadline passed while a worker was still sending: read the window for its outcome',
  },
} as const satisfies Record<string, ErrorEntry>;

/** The codes only the HTTP service answers: its own checks of a request, webhooks, readiness. */
export const serviceErrors = {
  unauthorized: { status: 401, description: 'a valid bearer token is required' },
  override_not_allowed: {
    status: 400,
    description: 'a start field the operator does not let HTTP callers set (SERVICE_ALLOW_OVERRIDES)',
  },
  payload_too_large: { status: 413, description: 'the body is larger than SERVICE_BODY_LIMIT_BYTES' },
  unsupported_media_type: { status: 415, description: 'bodies are application/json' },
  request_timeout: { status: 408, description: 'the request did not arrive in time' },
  headers_too_large: { status: 431, description: 'the request headers are too large' },
  empty_body: { status: 400, description: 'a webhook event is a JSON body' },
  invalid_json: { status: 400, description: 'the body is not JSON' },
  invalid_event: { status: 400, description: 'the body is not a Prelude webhook event' },
  invalid_signature: { status: 401, description: 'X-Webhook-Signature is missing, malformed or wrong' },
  webhook_key_missing: { status: 503, description: 'no webhook public key is configured' },
  webhook_key_invalid: { status: 503, description: 'the configured webhook public key is not a key' },
  temporal_unavailable: { status: 503, description: 'Temporal does not answer' },
  no_worker: { status: 503, description: 'no worker polls the task queue' },
  undecryptable: { status: 400, description: 'a payload no key of the ring decrypts' },
  internal: { status: 500, description: 'the service failed; the request ID is in its logs' },
} as const satisfies Record<string, ErrorEntry>;

/** Every error code of the table. */
export const errorTable = { ...verificationErrors, ...serviceErrors } satisfies Record<string, ErrorEntry>;

/** A code of the client helpers' `VerificationError`. */
export type VerificationErrorCode = keyof typeof verificationErrors;
/** Any code an error answer of the service carries. */
export type ErrorCode = keyof typeof errorTable;

/** Failure type → code, from the entries' `failureTypes`. */
const codeOfType = new Map<string, VerificationErrorCode>(
  Object.entries(verificationErrors).flatMap(([code, entry]) =>
    ('failureTypes' in entry ? entry.failureTypes : []).map((type) => [type, code as VerificationErrorCode]),
  ),
);

/** The code a caller gets for a failure the window reported. */
export function codeOfFailure(type: string | null | undefined): VerificationErrorCode {
  return codeOfType.get(type ?? '') ?? 'prelude_unavailable';
}

/** The HTTP status the service answers a code with. */
export function statusOf(code: ErrorCode): number {
  return errorTable[code].status;
}
