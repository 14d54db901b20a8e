/**
 * `PreludeError`, the one failure of the Prelude client, and how HTTP answers map to it. Built from
 * status, body and headers only: the transport's own error carries the request (and so the API
 * key), and never leaves this module.
 */
import type { AxiosError } from 'axios';
import { errorBodySchema } from './schemas';

/** What kind of failure, i.e. what a caller should do about it. */
export type PreludeErrorKind =
  /** Prelude could not be reached (connection refused, reset, DNS), or the caller aborted. Retryable. */
  | 'network'
  /** No answer within the timeout. Retryable. */
  | 'timeout'
  /** 5xx. Retryable. */
  | 'server'
  /** 429 without a lifecycle code. Retryable after `retryAfterMs`. */
  | 'rate_limited'
  /** 429 `premature_retry`, `too_many_attempts`, `too_many_checks`: a verification rule, not a fault. */
  | 'lifecycle'
  /** Any other 4xx, or a request refused before it was sent. */
  | 'invalid_request'
  /** 401 / 403: the API key is missing, wrong or not allowed. */
  | 'auth'
  /** A 2xx answer that is not what the API promises. */
  | 'invalid_response';

/** Prelude's lifecycle refusals (HTTP 429). */
export const lifecycleCodes = ['premature_retry', 'too_many_attempts', 'too_many_checks'] as const;
export type LifecycleCode = (typeof lifecycleCodes)[number];

/** Whether a code is one of Prelude's lifecycle refusals. */
export function isLifecycleCode(code: string): code is LifecycleCode {
  return (lifecycleCodes as readonly string[]).includes(code);
}

const retryableKinds: ReadonlySet<PreludeErrorKind> = new Set([
  'network',
  'timeout',
  'server',
  'rate_limited',
]);

/** A failed Prelude call. Safe to log: it holds no key, header or request body. */
export class PreludeError extends Error {
  override readonly name = 'PreludeError';
  readonly kind: PreludeErrorKind;
  /** Prelude's `code` (e.g. `invalid_phone_number`), or ours (`timeout`, `network_error`, `aborted`). */
  readonly code: string;
  readonly status?: number;
  readonly requestId?: string;
  /** How long Prelude asks us to wait before trying again. */
  readonly retryAfterMs?: number;

  constructor(init: {
    kind: PreludeErrorKind;
    code: string;
    message: string;
    status?: number;
    requestId?: string;
    retryAfterMs?: number;
  }) {
    super(init.message);
    this.kind = init.kind;
    this.code = init.code;
    this.status = init.status;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** Whether trying the same call again can succeed. */
  get retryable(): boolean {
    return retryableKinds.has(this.kind);
  }

  toJSON() {
    const { kind, code, status, requestId, retryAfterMs, message } = this;
    return { name: this.name, kind, code, status, requestId, retryAfterMs, message };
  }
}

/** The PreludeError for a non-2xx answer. */
export function errorFromResponse(
  status: number,
  data: unknown,
  headers: Record<string, unknown>,
  secret?: string,
): PreludeError {
  // The client follows no redirect (src/prelude/client.ts): whatever its body says, a 3xx means the
  // configured address is not the API's own.
  if (status >= 300 && status < 400) {
    return new PreludeError({
      kind: 'invalid_response',
      code: `http_${status}`,
      status,
      message: `Prelude answered HTTP ${status}, a redirect, which is not followed: set PRELUDE_BASE_URL to the API's own address`,
    });
  }
  const body = errorBodySchema.safeParse(data);
  // The body is the server's text: a proxy or an API that quotes the rejected key must not put the
  // key into an error that ends up in logs and workflow histories.
  const clean = (text: string) => redact(text, secret);
  const code = body.success ? clean(body.data.code) : `http_${status}`;
  const message = clean((body.success && body.data.message) || `Prelude answered HTTP ${status}`);
  const requestId = body.success && body.data.request_id ? clean(body.data.request_id) : undefined;
  const retryAfterMs = parseRetryAfter(headers);
  const kind: PreludeErrorKind =
    status >= 500
      ? 'server'
      : status === 429
        ? isLifecycleCode(code)
          ? 'lifecycle'
          : 'rate_limited'
        : status === 401 || status === 403
          ? 'auth'
          : 'invalid_request';
  return new PreludeError({ kind, code, message, status, requestId, retryAfterMs });
}

/**
 * The PreludeError for a call that got no (complete) answer. `timedOut`: the client's own deadline
 * for the whole call passed (whatever error the transport reported when it was cut off).
 */
export function errorFromTransport(
  error: unknown,
  callerSignal?: AbortSignal,
  timedOut = false,
): PreludeError {
  if (callerSignal?.aborted) {
    return new PreludeError({
      kind: 'network',
      code: 'aborted',
      message: 'the call was aborted by its caller',
    });
  }
  const code = isAxiosError(error) ? error.code : undefined;
  if (timedOut || code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return new PreludeError({ kind: 'timeout', code: 'timeout', message: 'Prelude did not answer in time' });
  }
  if (isAxiosError(error) && error.message.includes('maxContentLength')) {
    // Prelude was reached and answered, with more than any of its answers can be.
    return new PreludeError({
      kind: 'invalid_response',
      code: 'response_too_large',
      status: error.response?.status,
      message: 'Prelude’s answer is larger than any answer the API gives',
    });
  }
  return new PreludeError({
    kind: 'network',
    code: 'network_error',
    message: `Prelude could not be reached${code ? ` (${code})` : ''}`,
  });
}

/** `text` with every occurrence of `secret` masked. */
export function redact(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('[redacted]') : text;
}

/** `retry-after-ms`, or `retry-after` in seconds or as an HTTP date. */
function parseRetryAfter(headers: Record<string, unknown>): number | undefined {
  const ms = Number(headers['retry-after-ms']);
  if (Number.isFinite(ms) && ms >= 0 && headers['retry-after-ms'] !== undefined) return ms;
  const value = headers['retry-after'];
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * Axios's own `isAxiosError` test, without importing axios at run time: the backend helpers use
 * `PreludeError` and must not load the HTTP client (the package root's load time).
 */
function isAxiosError(error: unknown): error is AxiosError {
  return (
    typeof error === 'object' && error !== null && (error as { isAxiosError?: unknown }).isAxiosError === true
  );
}
