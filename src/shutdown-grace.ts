/**
 * How long a stopping worker lets the calls it has in flight finish before it cancels them (the
 * SDK's `shutdownGraceTime`, whose default is 0). A deploy stops workers: with no grace, every call
 * in flight at the SIGTERM is cancelled mid-way. One that had reached Prelude then has an unknown
 * fate, and the worker that takes over makes it again: a check spent twice (the user loses an
 * attempt), a code sent twice. With this grace a deploy is no crash.
 */
import { lifecycleAttemptMarginMs } from '../temporal.config';
import { longestAttemptMs } from '../workflows/retry-policies';

/** Time to report an attempt's answer to Temporal once its call is done. */
const reportMs = 1_000;

/**
 * The grace that lets the longest attempt the activities run finish and be reported, where each
 * Prelude request lasts at most `preludeTimeoutMs` (`PRELUDE_TIMEOUT_MS`): 10 s with the defaults.
 */
export function shutdownGraceMsFor(preludeTimeoutMs: number): number {
  return longestAttemptMs(preludeTimeoutMs + lifecycleAttemptMarginMs) + reportMs;
}
