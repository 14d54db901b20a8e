/**
 * Every activity's timeouts and retries, in one place, with the reason for each. Deterministic:
 * imported by workflow code and by the configuration (which checks that a send fits the helpers'
 * deadline).
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/common';

/**
 * The workflow task timeout of the runs a user waits on (windows, the per-target limits entity): a
 * task held by a worker that died is given to another after this, not Temporal's 10 s default.
 * Longer local calls keep their task alive by heartbeating it.
 */
export const userFacingWorkflowTaskTimeout = '3 seconds';

/**
 * How long a regular activity may go without a heartbeat before Temporal retries it: the time a
 * worker that died mid-call holds up its window (without heartbeats, the attempt's whole
 * start-to-close timeout). Activities heartbeat four times as often while they wait
 * (activities/failures.ts), so a busy worker is not mistaken for a dead one. Local activities have
 * none: the workflow task timeout covers them.
 */
export const heartbeatTimeout = '2 seconds';

/**
 * The calls a user waits on (create, check): Prelude has no idempotency key, so a call retried after
 * a timeout may already have reached Prelude (a second code sent, a second check spent). Few
 * attempts on a short schedule: a flaky network costs at most two extra calls, and a user waiting on
 * the HTTP answer gets one within seconds. The handlers read a retried call's answer by Prelude's
 * lifecycle rules.
 */
export const lifecycleRetry = {
  initialInterval: 200,
  backoffCoefficient: 2,
  maximumInterval: 2_000,
  maximumAttempts: 3,
} as const;

/** Watch predict before a first send: advisory, so a short budget; the send goes on without it. */
export const predictRetry = { ...lifecycleRetry, maximumAttempts: 2 } as const;

/**
 * A read of Prelude's History API after a check whose answer was lost: safe to repeat, and Prelude's
 * transient errors (a 5xx, a 429) should not make the window count by its rules, which may count a
 * check Prelude never judged; but the user is waiting on the check's answer, so three attempts,
 * then the window counts without it. (With two, about 2 % of reads failed both where 15 % of calls
 * fail, as in the suite's chaos run, which then counted a check by the rules once in CI.)
 */
export const historyReadRetry = { ...lifecycleRetry, maximumAttempts: 3 } as const;

/**
 * The same read after a send whose answer was lost: one attempt, so that the send's worst case
 * (its calls, then the read) still fits the helpers' deadline. Unread, the window counts by its
 * rules, on the side of more sends.
 */
export const sendHistoryReadRetry = { ...lifecycleRetry, maximumAttempts: 1 } as const;

/** The per-target limits entity answers from Temporal itself: quick, and safe to repeat (deduplicated). */
export const reservationRetry = { ...lifecycleRetry, maximumAttempts: 2 } as const;
export const reservationAttemptTimeoutMs = 3_000;

/** Calls nobody waits on (Watch feedback, success messages): safe or harmless to repeat. */
export const sideCallOptions: ActivityOptions = {
  startToCloseTimeout: '15 seconds',
  heartbeatTimeout,
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 5,
  },
};

/** Notify sends: no idempotency key either, so as few attempts as the lifecycle calls. */
export const notifySendOptions: ActivityOptions = {
  ...sideCallOptions,
  retry: { ...sideCallOptions.retry, maximumAttempts: 3 },
};

/**
 * One attempt of a Notify send, which the sending workflow makes itself (notify-attempts.ts): it
 * must know each attempt's fate, as a repeated send is a second message.
 */
export const notifyAttemptOptions: ActivityOptions = {
  ...sideCallOptions,
  retry: { maximumAttempts: 1 },
};

/** How many attempts a Notify send makes at most, on `lifecycleRetry`'s pauses. */
export const notifyAttempts = 3;

/**
 * How long a Notify send whose answer was lost waits for a webhook about its message before it tries
 * again: Prelude posts `transactional.message.created` as it takes a message, within seconds.
 */
export const lostNotifyAnswerWaitMs = 10_000;

/**
 * Options of one attempt of a lifecycle call, at most `attemptTimeoutMs` long (the heartbeat timeout
 * applies when it runs as a regular activity). The window makes the attempts itself, on
 * `lifecycleRetry`'s schedule (see call-attempts.ts): it must know each attempt's fate, and Temporal's
 * retries would show it only the last one.
 */
export function lifecycleAttemptOptions(attemptTimeoutMs: number): LocalActivityOptions & ActivityOptions {
  return { startToCloseTimeout: attemptTimeoutMs, heartbeatTimeout, retry: { maximumAttempts: 1 } };
}

/** Options of one attempt of a send's reservation and create in one call (activities/send.ts). */
export function reserveAndCreateOptions(attemptTimeoutMs: number): LocalActivityOptions & ActivityOptions {
  return lifecycleAttemptOptions(longestAttemptMs(attemptTimeoutMs));
}

/**
 * The longest any one attempt of the activities runs, where a Prelude call's attempt lasts at most
 * `attemptTimeoutMs`: a send's reservation and create in one call. (The calls nobody waits on make
 * one Prelude call an attempt, as short as a lifecycle call's.)
 */
export function longestAttemptMs(attemptTimeoutMs: number): number {
  return reservationAttemptTimeoutMs + attemptTimeoutMs;
}

/** Options of Watch predict: safe to repeat, so Temporal retries it on `predictRetry`. */
export function predictOptions(attemptTimeoutMs: number): LocalActivityOptions & ActivityOptions {
  return { startToCloseTimeout: attemptTimeoutMs, heartbeatTimeout, retry: predictRetry };
}

/** The options of a read of Prelude's History API (see {@link historyReadRetry}). */
export function historyReadOptions(attemptTimeoutMs: number): LocalActivityOptions & ActivityOptions {
  return { startToCloseTimeout: attemptTimeoutMs, heartbeatTimeout, retry: historyReadRetry };
}

/** The options of that read after a send (see {@link sendHistoryReadRetry}). */
export function sendHistoryReadOptions(attemptTimeoutMs: number): LocalActivityOptions & ActivityOptions {
  return { startToCloseTimeout: attemptTimeoutMs, heartbeatTimeout, retry: sendHistoryReadRetry };
}

/** The pause before attempt `attempt + 1` on `lifecycleRetry`'s schedule, in ms. */
export function lifecyclePauseMs(attempt: number): number {
  const { initialInterval, backoffCoefficient, maximumInterval } = lifecycleRetry;
  return Math.min(maximumInterval, initialInterval * backoffCoefficient ** (attempt - 1));
}

/** The longest a call with these retries can take: every attempt timing out, plus the pauses between. */
function worstCaseMs(attemptTimeoutMs: number, { maximumAttempts }: { maximumAttempts: number }): number {
  let pauses = 0;
  for (let attempt = 1; attempt < maximumAttempts; attempt += 1) pauses += lifecyclePauseMs(attempt);
  return maximumAttempts * attemptTimeoutMs + pauses;
}

/**
 * The longest a send or a check can take when everything times out (see {@link sendWorstCaseMs},
 * {@link checkWorstCaseMs}): the helpers' deadline must be longer, or a caller could be told "no
 * answer" while the call still goes through.
 */
export function callWorstCaseMs(attemptTimeoutMs: number): number {
  return Math.max(sendWorstCaseMs(attemptTimeoutMs), checkWorstCaseMs(attemptTimeoutMs));
}

/** The longest a check can take: its attempts, then a read of Prelude's record ({@link historyReadRetry}). */
export function checkWorstCaseMs(attemptTimeoutMs: number): number {
  return worstCaseMs(attemptTimeoutMs, lifecycleRetry) + worstCaseMs(attemptTimeoutMs, historyReadRetry);
}

/**
 * The longest a send can take when everything times out: the limits reservation and Watch
 * predict side by side, then the create, each with all its retries, then a read of Prelude's record
 * after its lost answers ({@link sendHistoryReadRetry}).
 */
export function sendWorstCaseMs(attemptTimeoutMs: number): number {
  const reserve = worstCaseMs(reservationAttemptTimeoutMs, reservationRetry);
  const predict = worstCaseMs(attemptTimeoutMs, predictRetry);
  const read = worstCaseMs(attemptTimeoutMs, sendHistoryReadRetry);
  // Apart (`enforce` fraud mode, windows of earlier code): the reservation beside predict, then
  // the create.
  const apart = Math.max(reserve, predict) + worstCaseMs(attemptTimeoutMs, lifecycleRetry);
  // In one call (reserveWithCreate), beside predict.
  const inOneCall = Math.max(
    predict,
    worstCaseMs(reservationAttemptTimeoutMs + attemptTimeoutMs, lifecycleRetry),
  );
  return Math.max(apart, inOneCall) + read;
}
