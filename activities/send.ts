/**
 * A send's steps in one activity: leave from the target's limits entity, then Prelude's create when
 * it is granted, with Watch predict beside them when the verdict is only recorded (`monitor`). One
 * call instead of three, so that a window's send runs its calls in one round: one local-activity
 * marker (a billed action) and one pass of the window's workflow code per send.
 */
import { performance } from 'node:perf_hooks';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { PreludeError, type PredictResponse } from '../src/prelude';
import { noteTaskStart, toActivityFailure } from './failures';
import { createLimitsActivities, type ReservationOutcome, type ReserveTargetSendInput } from './limits';
import {
  createVerifyActivities,
  type CreateVerificationInput,
  type CreateVerificationOutcome,
  type VerifyDependencies,
} from './verify';
import { createWatchActivities, type PredictTargetInput } from './watch';
import { predictRetry, reservationAttemptTimeoutMs } from '../workflows/retry-policies';
import { loadPRetry } from '../src/p-retry';

/** Input of {@link SendActivities.reserveAndCreateVerification}. */
export interface ReserveAndCreateInput {
  reservation: ReserveTargetSendInput;
  create: CreateVerificationInput;
  /** Watch predict to make beside the reservation and the create (advisory: it never stops them). */
  predict?: PredictTargetInput;
}

/** The reservation's answer, Prelude's when the reservation was granted, and Watch's verdict. */
export interface ReserveAndCreateOutcome {
  reservation: ReservationOutcome;
  created?: CreateVerificationOutcome;
  /** When predict was asked: Watch's answer, or why there is none. */
  predicted?: { prediction: PredictResponse } | { failure: string };
}

/** The failure type of a reservation that could not be asked: Prelude was not called. */
export const reservationFailed = 'ReservationFailed';

/**
 * How long, at least, a send waits for Watch's verdict once its own calls are done: as long again as
 * they took, and no less than this. In `monitor` the verdict is only recorded, so a Watch that hangs
 * costs each send about a second, not a create attempt's whole time.
 */
export const predictGraceMs = 1_000;

/** How the predict made inside a send went, for the Prelude call metrics (src/metrics). */
export interface InnerPredictCall {
  seconds: number;
  error?: unknown;
}

const innerPredicts = new WeakMap<Context, InnerPredictCall>();

/** The predict a send activity made inside its execution, if it made one. */
export function innerPredictOf(context: Context): InnerPredictCall | undefined {
  return innerPredicts.get(context);
}

/** Builds the send activity from the limits, verify and Watch activities. */
export function createSendActivities(deps: VerifyDependencies & { client: Client }) {
  const { reserveTargetSend } = createLimitsActivities(deps);
  const { createVerification } = createVerifyActivities(deps);
  const { predictTarget } = createWatchActivities(deps);

  /**
   * Predict on its own schedule (`predictRetry`, as when it was an activity of its own) for at most
   * `budgetMs`, or until `giveUp` aborts, answered rather than thrown: a failed or late verdict is
   * recorded, and the send goes on. How it went is kept for the Prelude call metrics, once.
   */
  const predictWithin = async (
    input: PredictTargetInput,
    budgetMs: number,
    giveUp: AbortSignal,
  ): Promise<NonNullable<ReserveAndCreateOutcome['predicted']>> => {
    const { default: pRetry } = await loadPRetry();
    const context = Context.current();
    const started = performance.now();
    // Past the budget, or once the send gives up on it, the call still running is no longer waited
    // for: counted as timed out. A plain timer, and the failure built only when it is late: an
    // aborted timer or a failure built up front would cost every send an error's stack (~45 µs).
    let stopWaiting: () => void = () => undefined;
    const late = new Promise<'late'>((resolve) => {
      const onGiveUp = () => resolve('late');
      const timer = setTimeout(onGiveUp, Math.max(0, budgetMs));
      if (giveUp.aborted) onGiveUp();
      giveUp.addEventListener('abort', onGiveUp, { once: true });
      stopWaiting = () => {
        clearTimeout(timer);
        giveUp.removeEventListener('abort', onGiveUp);
      };
    });
    const answered = await Promise.race([
      pRetry(() => predictTarget(input), {
        retries: predictRetry.maximumAttempts - 1,
        minTimeout: predictRetry.initialInterval,
        shouldRetry: ({ error }) => !(error instanceof ApplicationFailure && error.nonRetryable),
      }).then(
        (prediction) => ({ prediction }),
        (error: unknown) => ({ error }),
      ),
      late,
    ]).finally(stopWaiting);
    const error =
      answered === 'late'
        ? toActivityFailure(
            new PreludeError({ kind: 'timeout', code: 'timeout', message: 'Watch did not answer in time' }),
          )
        : 'error' in answered
          ? answered.error
          : undefined;
    innerPredicts.set(context, { seconds: (performance.now() - started) / 1000, error });
    return answered !== 'late' && 'prediction' in answered
      ? { prediction: answered.prediction }
      : { failure: error instanceof Error ? error.message : String(error) };
  };

  const reserveThenCreate = async ({
    reservation,
    create,
  }: ReserveAndCreateInput): Promise<Omit<ReserveAndCreateOutcome, 'predicted'>> => {
    let granted: ReservationOutcome;
    try {
      granted = await reserveTargetSend(reservation);
    } catch (error) {
      const failure = error instanceof ApplicationFailure ? error : undefined;
      throw ApplicationFailure.create({
        type: reservationFailed,
        message: `the target's limits could not be asked: ${failure?.message ?? String(error)}`,
        nonRetryable: failure?.nonRetryable ?? false,
        details: [{ notSent: true }],
      });
    }
    if (!granted.granted) return { reservation: granted };
    try {
      return { reservation: granted, created: await createVerification(create) };
    } catch (error) {
      throw withEarlierExecutions(error, granted.earlierExecutions);
    }
  };

  return {
    /**
     * Reserves the send (deduplicated by its reservation ID, so a retried attempt is counted once),
     * then asks Prelude to send when it is granted; meanwhile asks Watch for its verdict when
     * `predict` is given. A failed reservation fails the attempt as one that never reached Prelude
     * (`notSent` in its details); a failed predict is answered as `predicted.failure`.
     */
    async reserveAndCreateVerification(input: ReserveAndCreateInput): Promise<ReserveAndCreateOutcome> {
      noteTaskStart(input.reservation.asker?.execution);
      // A slow Watch must not cost the send: its verdict is waited for at most as long as one create
      // attempt may take (the call's timeout less the reservation's share)…
      const budgetMs = Context.current().info.startToCloseTimeoutMs - reservationAttemptTimeoutMs;
      const giveUp = new AbortController();
      const predicted = input.predict ? predictWithin(input.predict, budgetMs, giveUp.signal) : undefined;
      const started = performance.now();
      const sent = await reserveThenCreate(input).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      // …and once the send's own calls are done, as long again as they took (at least
      // predictGraceMs). An attempt that fails waits too: nothing of it outlives the attempt.
      let verdict: ReserveAndCreateOutcome['predicted'];
      if (predicted) {
        const grace = setTimeout(() => giveUp.abort(), Math.max(predictGraceMs, performance.now() - started));
        try {
          verdict = await predicted;
        } finally {
          clearTimeout(grace);
        }
      }
      if ('error' in sent) throw sent.error;
      return verdict ? { ...sent.value, predicted: verdict } : sent.value;
    },
  };
}

/** The send activity. */
export type SendActivities = ReturnType<typeof createSendActivities>;

/**
 * A create that failed after its reservation named earlier executions of the send (workflow tasks
 * lost to a crash, each of which may have sent a code): its failure says how many, beside Prelude's
 * answer, so that the window counts them even though this attempt sent nothing. Without it they
 * would be known only to the attempt that failed.
 */
function withEarlierExecutions(error: unknown, earlierExecutions: number | undefined): unknown {
  if (!earlierExecutions || !(error instanceof ApplicationFailure)) return error;
  const [answer, ...rest] = error.details ?? [];
  return new ApplicationFailure(
    error.message,
    error.type,
    error.nonRetryable,
    [{ ...(answer as object | undefined), earlierExecutions }, ...rest],
    error.cause,
    error.nextRetryDelay,
    error.category,
  );
}
