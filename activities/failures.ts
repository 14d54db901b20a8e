import { ApplicationFailure, Context } from '@temporalio/activity';
import { PreludeError } from '../src/prelude';

/**
 * Turns a failed Prelude call into the Temporal failure that makes the right retry decision:
 * transient trouble is retried by Temporal (after Prelude's own delay for rate limits), a request
 * Prelude will never accept is not. The failure carries Prelude's code and request ID, never the
 * request itself (it may hold personal data) nor any header (it holds the API key).
 */
export function toActivityFailure(error: unknown): ApplicationFailure {
  if (!(error instanceof PreludeError)) {
    return ApplicationFailure.create({
      type: 'UnexpectedError',
      message: error instanceof Error ? error.message : String(error),
    });
  }
  const details = [{ code: error.code, status: error.status, requestId: error.requestId }];
  return ApplicationFailure.create({
    type: `Prelude.${error.kind}`,
    message: `Prelude ${error.kind}: ${error.message}`,
    nonRetryable: !error.retryable,
    nextRetryDelay: error.kind === 'rate_limited' ? error.retryAfterMs : undefined,
    details,
  });
}

/**
 * Calls Prelude from an activity: the call is cancelled with the activity, and its failure becomes
 * the Temporal failure that makes the right retry decision (see {@link toActivityFailure}).
 */
export async function callPrelude<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  try {
    return await call(Context.current().cancellationSignal);
  } catch (error) {
    throw toActivityFailure(error);
  }
}
