/**
 * A send's two steps in one activity: leave from the target's limits entity, then Prelude's create
 * when it is granted. One call instead of two, so that a window's send runs its calls in one round
 * (Watch predict beside it): one local-activity marker (a billed action) and one pass of the
 * window's workflow code fewer per send.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createLimitsActivities, type ReservationOutcome, type ReserveTargetSendInput } from './limits';
import {
  createVerifyActivities,
  type CreateVerificationInput,
  type CreateVerificationOutcome,
  type VerifyDependencies,
} from './verify';
import type { Client } from '@temporalio/client';

/** Input of {@link SendActivities.reserveAndCreateVerification}. */
export interface ReserveAndCreateInput {
  reservation: ReserveTargetSendInput;
  create: CreateVerificationInput;
}

/** The reservation's answer, and Prelude's when the reservation was granted. */
export interface ReserveAndCreateOutcome {
  reservation: ReservationOutcome;
  created?: CreateVerificationOutcome;
}

/** The failure type of a reservation that could not be asked: Prelude was not called. */
export const reservationFailed = 'ReservationFailed';

/** Builds the send activity from the limits and verify activities. */
export function createSendActivities(deps: VerifyDependencies & { client: Client }) {
  const { reserveTargetSend } = createLimitsActivities(deps);
  const { createVerification } = createVerifyActivities(deps);
  return {
    /**
     * Reserves the send (deduplicated by its reservation ID, so a retried attempt is counted once),
     * then asks Prelude to send when it is granted. A failed reservation fails the attempt as one
     * that never reached Prelude (`notSent` in its details).
     */
    async reserveAndCreateVerification({
      reservation,
      create,
    }: ReserveAndCreateInput): Promise<ReserveAndCreateOutcome> {
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
      return { reservation: granted, created: await createVerification(create) };
    },
  };
}

/** The send activity. */
export type SendActivities = ReturnType<typeof createSendActivities>;
