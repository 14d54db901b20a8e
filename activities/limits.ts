import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { targetKeySearchAttribute } from '../workflows/search-attributes';
import { targetLimitsWorkflow } from '../workflows/target-limits';
import type { OutcomeReport } from '../workflows/outcome-report';
import {
  outcomeReportSignal,
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

/** Input of {@link LimitsActivities.handOverOutcomeReport}. */
export interface HandOverOutcomeReportInput {
  targetKey: string;
  report: OutcomeReport;
}

/** Builds the activities that reach a target's limits entity. */
export function createLimitsActivities({ client }: { client: Client }) {
  /** How the entity is started when a call finds it ended (on the calling activity's task queue). */
  const entityStart = (targetKey: string) => ({
    workflowId: `${targetLimitsIdPrefix}${targetKey}`,
    taskQueue: Context.current().info.taskQueue,
    args: [{ targetKey }] as [{ targetKey: string }],
    // Every send waits on this entity: a task stuck on a dead worker must move on fast.
    workflowTaskTimeout: userFacingWorkflowTaskTimeout,
    typedSearchAttributes: [{ key: targetKeySearchAttribute, value: targetKey }],
  });
  return {
    /**
     * Hands a closed window's report to the target's entity (started when it has ended), which makes
     * it. A report handed over twice is made once.
     */
    async handOverOutcomeReport({ targetKey, report }: HandOverOutcomeReportInput): Promise<void> {
      await runActivityCall((signal) =>
        client.withAbortSignal(signal, () =>
          client.workflow.signalWithStart(targetLimitsWorkflow, {
            ...entityStart(targetKey),
            signal: outcomeReportSignal,
            signalArgs: [report],
          }),
        ),
      );
    },

    /**
     * Asks the target's limits entity (started on first use, on this activity's task queue) for one
     * send, and a window when `opensWindow`. Retried reservations are deduplicated by their ID.
     */
    async reserveTargetSend({ targetKey, ...request }: ReserveTargetSendInput): Promise<ReservationOutcome> {
      return runActivityCall(async (signal) => {
        try {
          const usage = await client.withAbortSignal(signal, () =>
            client.workflow.executeUpdateWithStart(reserveSendUpdate, {
              args: [request],
              updateId: request.reservationId,
              startWorkflowOperation: new WithStartWorkflowOperation(targetLimitsWorkflow, {
                ...entityStart(targetKey),
                workflowIdConflictPolicy: 'USE_EXISTING',
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
