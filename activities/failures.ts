import { ApplicationFailure, Context } from '@temporalio/activity';
import { preludeFailureType } from '../src/errors';
import { PreludeError } from '../src/prelude';
import { refuseAfterStall } from './stall-fence';

/**
 * Turns a failed call into the Temporal failure that makes the right retry decision: transient
 * trouble is retried by Temporal (after Prelude's own delay for rate limits), a request Prelude will
 * never accept is not. The failure carries Prelude's code and request ID, never the request itself
 * (it may hold personal data) nor any header (it holds the API key). A failure an activity built on
 * purpose passes as it is.
 */
export function toActivityFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  if (!(error instanceof PreludeError)) {
    return ApplicationFailure.create({
      type: 'UnexpectedError',
      message: error instanceof Error ? error.message : String(error),
    });
  }
  // The window reads status and wait from here (workflows/call-attempts.ts): a failure's own
  // next-retry delay does not reach workflow code.
  const { code, status, requestId, retryAfterMs } = error;
  const details = [{ code, status, requestId, retryAfterMs }];
  return ApplicationFailure.create({
    type: preludeFailureType(error.kind),
    message: `Prelude ${error.kind}: ${error.message}`,
    nonRetryable: !error.retryable,
    nextRetryDelay: error.kind === 'rate_limited' ? error.retryAfterMs : undefined,
    details,
  });
}

/** The time of the workflow task that scheduled an activity, where the activity was told it. */
const taskStarts = new WeakMap<Context, number>();

/**
 * Tells the running activity when the workflow task that scheduled it began (the workflow's
 * `Date.now()` there), for {@link runActivityCall}'s stall check. A local activity needs it: its own
 * scheduled time is the worker's, taken when the worker ran the task, which after a stall can be
 * later than the stall itself.
 */
export function noteTaskStart(at: number | undefined): void {
  if (at !== undefined) taskStarts.set(Context.current(), at);
}

/**
 * Runs an activity's one outside call (Prelude, or Temporal itself), the same way for every
 * activity:
 * - the call is not made if this worker stalled since the task that asked for it began
 *   ({@link refuseAfterStall}): another worker may have run that task again meanwhile;
 * - the call gets the activity's cancellation signal, so a timed-out, cancelled or shut-down attempt
 *   leaves no request waiting;
 * - a regular activity given a heartbeat timeout heartbeats while it waits. Nothing else tells
 *   Temporal that the worker running an attempt has died: without heartbeats the attempt is retried
 *   only when its whole start-to-close timeout has passed; with them, one heartbeat timeout after the
 *   crash. Local activities run inside a workflow task, whose own timeout covers them;
 * - a failure becomes the Temporal failure that makes the right retry decision
 *   ({@link toActivityFailure}).
 */
export async function runActivityCall<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const context = Context.current();
  const { heartbeatTimeoutMs, isLocal } = context.info;
  const heartbeats =
    heartbeatTimeoutMs && !isLocal
      ? setInterval(() => context.heartbeat(), Math.max(100, heartbeatTimeoutMs / 4))
      : undefined;
  try {
    refuseAfterStall(taskStarts.get(context) ?? context.info.currentAttemptScheduledTimestampMs);
    return await call(context.cancellationSignal);
  } catch (error) {
    throw toActivityFailure(error);
  } finally {
    clearInterval(heartbeats);
  }
}
