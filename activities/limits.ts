import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { targetKeySearchAttribute } from '../workflows/search-attributes';
import { targetLimitsWorkflow } from '../workflows/target-limits';
import {
  reserveSendUpdate,
  targetLimitsIdPrefix,
  targetRateLimited,
  type ReserveSendRequest,
  type TargetUsage,
} from '../workflows/target-limits-messages';
import { userFacingWorkflowTaskTimeout } from '../workflows/retry-policies';
import { runActivityCall } from './failures';

/** Input of {@link LimitsActivities.reserveTargetSend}. */
export interface ReserveTargetSendInput extends ReserveSendRequest {
  targetKey: string;
}

/** A reservation's answer: granted with what is left, or refused until `retryAfterSeconds`. */
export type ReservationOutcome =
  | { granted: true; usage: TargetUsage | undefined }
  | { granted: false; retryAfterSeconds: number; message: string };

const refusalDetails = z.object({ retryAfterSeconds: z.number() });

/** Builds the activity that asks a target's limits entity for leave to send. */
export function createLimitsActivities({ client }: { client: Client }) {
  return {
    /**
     * Asks the target's limits entity (started on first use, on this activity's task queue) for one
     * send, and a window when `opensWindow`. Retried reservations are deduplicated by their ID.
     */
    async reserveTargetSend({ targetKey, ...request }: ReserveTargetSendInput): Promise<ReservationOutcome> {
      const { taskQueue } = Context.current().info;
      return runActivityCall(async (signal) => {
        try {
          const usage = await client.withAbortSignal(signal, () =>
            client.workflow.executeUpdateWithStart(reserveSendUpdate, {
              args: [request],
              updateId: request.reservationId,
              startWorkflowOperation: new WithStartWorkflowOperation(targetLimitsWorkflow, {
                workflowId: `${targetLimitsIdPrefix}${targetKey}`,
                taskQueue,
                args: [{ targetKey }],
                workflowIdConflictPolicy: 'USE_EXISTING',
                // Every send waits on this entity: a task stuck on a dead worker must move on fast.
                workflowTaskTimeout: userFacingWorkflowTaskTimeout,
                typedSearchAttributes: [{ key: targetKeySearchAttribute, value: targetKey }],
              }),
            }),
          );
          return { granted: true as const, usage };
        } catch (error) {
          if (
            error instanceof WorkflowUpdateFailedError &&
            error.cause instanceof ApplicationFailure &&
            error.cause.type === targetRateLimited
          ) {
            const details = refusalDetails.safeParse(error.cause.details?.[0]);
            return {
              granted: false as const,
              retryAfterSeconds: details.success ? details.data.retryAfterSeconds : 1,
              message: error.cause.message,
            };
          }
          throw error;
        }
      });
    },
  };
}

/** The limits activity. */
export type LimitsActivities = ReturnType<typeof createLimitsActivities>;
