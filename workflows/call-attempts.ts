/**
 * A lifecycle call (create, check) made attempt by attempt by the window itself, so that it knows
 * each attempt's fate. Prelude has no idempotency key: an attempt whose answer was lost may have
 * been applied (a code sent, a check spent), and the window must read the next answer by Prelude's
 * lifecycle rules. But only an attempt whose fate is unknown counts: one that Prelude answered with
 * an error was not applied. With Temporal's own retries the window would see the last failure only.
 */
import { ActivityFailure, ApplicationFailure, sleep } from '@temporalio/workflow';
import { lifecyclePauseMs, lifecycleRetry } from './retry-policies';

/** A call's answer, and how many earlier attempts of it may have reached Prelude. */
export interface Attempted<T> {
  value: T;
  /** Earlier attempts whose fate is unknown: each may have been applied (a code sent, a check spent). */
  uncertainAttempts: number;
}

/** Every attempt failed; `uncertainAttempts` of them may have been applied all the same. */
export class AttemptsFailed extends Error {
  override readonly name = 'AttemptsFailed';
  constructor(
    readonly lastFailure: unknown,
    readonly uncertainAttempts: number,
  ) {
    super(lastFailure instanceof Error ? lastFailure.message : String(lastFailure));
  }
}

/** What a failed call tells its caller: its failure, and how many of its attempts may have reached Prelude. */
export function failedAttempts(error: unknown): { failure: unknown; uncertainAttempts: number } {
  return error instanceof AttemptsFailed
    ? { failure: error.lastFailure, uncertainAttempts: error.uncertainAttempts }
    : { failure: error, uncertainAttempts: 0 };
}

/** Runs `attempt` until it answers, on {@link lifecycleRetry}'s schedule. */
export async function attemptLifecycleCall<T>(attempt: () => Promise<T>): Promise<Attempted<T>> {
  let uncertainAttempts = 0;
  for (let number = 1; ; number += 1) {
    try {
      return { value: await attempt(), uncertainAttempts };
    } catch (error) {
      const fate = fateOf(error);
      if (fate.mayHaveReached) uncertainAttempts += 1;
      if (!fate.retryable || number >= lifecycleRetry.maximumAttempts) {
        throw new AttemptsFailed(error, uncertainAttempts);
      }
      await sleep(fate.retryAfterMs ?? lifecyclePauseMs(number));
    }
  }
}

/** What a failed attempt tells of its fate (see {@link fateOf}). */
export interface Fate {
  /** The attempt may have been applied: its answer, if any, never came back readable. */
  mayHaveReached: boolean;
  retryable: boolean;
  retryAfterMs?: number;
}

/**
 * What a failed attempt tells. Prelude answered with an error status (5xx, 429, 4xx): not applied.
 * Anything else (a timeout, a cut connection, a worker that died mid-call, an unreadable 2xx) may
 * have been. A wait Prelude asks for that is longer than the schedule's longest pause is not waited
 * out: the caller is waiting on the answer, and gets Prelude's refusal now.
 */
export function fateOf(error: unknown): Fate {
  const failure = applicationFailureOf(error);
  if (!failure) return { mayHaveReached: true, retryable: true };
  const { status, retryAfterMs, notSent } = answerOf(failure);
  return {
    mayHaveReached: !notSent && (status === undefined || (status >= 200 && status < 300)),
    retryable: !failure.nonRetryable && (retryAfterMs ?? 0) <= lifecycleRetry.maximumInterval,
    retryAfterMs,
  };
}

/** What Prelude answered, as the activity's failure details carry it (activities/failures.ts). */
function answerOf(failure: ApplicationFailure): { status?: number; retryAfterMs?: number; notSent: boolean } {
  const { status, retryAfterMs, notSent } = detailsOf(failure);
  return {
    status: typeof status === 'number' ? status : undefined,
    retryAfterMs: typeof retryAfterMs === 'number' ? retryAfterMs : undefined,
    // A step before Prelude failed (activities/send.ts): the attempt never reached it.
    notSent: notSent === true,
  };
}

/** The activity's own failure in what an attempt threw, if it failed as the activity decided. */
function applicationFailureOf(error: unknown): ApplicationFailure | undefined {
  const failure = error instanceof ActivityFailure ? error.cause : error;
  return failure instanceof ApplicationFailure ? failure : undefined;
}

/** The first of a failure's details, where the activities put what the window reads. */
function detailsOf(failure: ApplicationFailure): Record<string, unknown> {
  const [details] = failure.details ?? [];
  return (details ?? {}) as Record<string, unknown>;
}

/**
 * The earlier executions of a send that a failed attempt's reservation named (activities/send.ts):
 * workflow tasks lost to a crash, each of which may have sent a code. 0 when it named none.
 */
export function earlierExecutionsIn(error: unknown): number {
  const failure = applicationFailureOf(error);
  if (!failure) return 0;
  const { earlierExecutions } = detailsOf(failure);
  return typeof earlierExecutions === 'number' ? earlierExecutions : 0;
}
