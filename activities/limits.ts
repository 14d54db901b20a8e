import { Context } from '@temporalio/activity';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { targetKeySearchAttribute } from '../workflows/search-attributes';
import { targetLimitsWorkflow } from '../workflows/target-limits';
import type { OutcomeReport } from '../workflows/outcome-report';
import {
  codesSentSignal,
  giveBackSendUpdate,
  outcomeReportSignal,
  type CodesSent,
  reserveSendUpdate,
  sendNotCounted,
  targetLimitsIdPrefix,
  targetRateLimited,
  askerEntry,
  type ReserveSendRequest,
  type TargetLimitsInput,
  type TargetUsage,
  type UnsentSend,
  usageOf,
} from '../workflows/target-limits-messages';
import { userFacingWorkflowTaskTimeout } from '../workflows/retry-policies';
import { guardCodesSentSignal, type GuardGrantRef } from '../workflows/send-guard-messages';
import { isNotFound } from '../src/client/calls';
import { runActivityCall } from './failures';

/** Input of {@link LimitsActivities.reserveTargetSend}. */
export interface ReserveTargetSendInput extends ReserveSendRequest {
  targetKey: string;
}

/**
 * A reservation's answer: granted with what is left (and how many other executions of the same send
 * asked it before, see `ReserveSendRequest.asker`), or refused until `retryAfterSeconds`.
 */
export type ReservationOutcome =
  | { granted: true; usage: TargetUsage | undefined; earlierExecutions?: number }
  | { granted: false; retryAfterSeconds: number; message: string };

const refusalDetails = z.object({ retryAfterSeconds: z.number() });

/** A reservation the entity refused, as the activity answers it; undefined for any other failure. */
function refusalOf(error: unknown): Extract<ReservationOutcome, { granted: false }> | undefined {
  if (
    !(error instanceof WorkflowUpdateFailedError) ||
    !(error.cause instanceof ApplicationFailure) ||
    error.cause.type !== targetRateLimited
  ) {
    return undefined;
  }
  const details = refusalDetails.safeParse(error.cause.details?.[0]);
  return {
    granted: false,
    retryAfterSeconds: details.success ? details.data.retryAfterSeconds : 1,
    message: error.cause.message,
  };
}

/** Input of {@link LimitsActivities.handOverOutcomeReport}. */
export interface HandOverOutcomeReportInput {
  targetKey: string;
  report: OutcomeReport;
}

/** Input of {@link LimitsActivities.tellCodesSent}. */
export interface TellCodesSentInput extends CodesSent {
  targetKey: string;
  /** The send guards' grant of the send, whose shard is told too (see `GuardCodesSent`). */
  guard?: GuardGrantRef;
}

/** Input of {@link LimitsActivities.giveBackSend}. */
export interface GiveBackSendInput extends UnsentSend {
  targetKey: string;
}

/** Whether a send that failed sent nothing, as its target's entity judged it (see `UnsentSend`). */
export interface GiveBackOutcome {
  /** True when no code went out: the send is no longer counted (or never was). */
  nothingSent: boolean;
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
  /**
   * Starts the target's entity with a first reservation counted in its input, delayed by the period
   * (see reserveTargetSend); `undefined` when an entity started meanwhile, which then judges it.
   */
  const grantByStarting = async (
    targetKey: string,
    request: ReserveSendRequest,
    signal: AbortSignal,
  ): Promise<ReservationOutcome | undefined> => {
    const now = Date.now();
    const counted = { windows: request.opensWindow ? [now] : [], sends: [now] };
    const input: TargetLimitsInput = {
      targetKey,
      ...counted,
      recent: [request.reservationId],
      ...(request.asker ? { askers: [askerEntry(request.reservationId, request.asker)] } : {}),
      limits: request.limits,
    };
    try {
      await client.withAbortSignal(signal, () =>
        client.workflow.start(targetLimitsWorkflow, {
          ...entityStart(targetKey),
          args: [input],
          workflowIdConflictPolicy: 'FAIL',
          // Nothing is left for the entity to do until this count leaves the period: it sleeps
          // through it without running at all (no workflow task, no timer, no place in a worker's
          // cache), and ends then. Whatever asks it meanwhile (an update, a signal-with-start) makes
          // it run at once; a plain query is answered only once it has run.
          startDelay: request.limits.periodSeconds * 1000,
        }),
      );
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return undefined;
      throw error;
    }
    return { granted: true as const, usage: usageOf(counted, request.limits) };
  };
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
     * Tells the target's entity (started when it has ended) how many codes a send sent in all, where
     * its reservation could not count them (see `CodesSent`): it counts the most it was told.
     */
    async tellCodesSent({ targetKey, guard, ...sent }: TellCodesSentInput): Promise<void> {
      const tellLimits = (signal: AbortSignal) =>
        client.withAbortSignal(signal, () =>
          client.workflow.signalWithStart(targetLimitsWorkflow, {
            ...entityStart(targetKey),
            signal: codesSentSignal,
            signalArgs: [sent],
          }),
        );
      const tellShard = async (signal: AbortSignal, { shardId, ...counted }: GuardGrantRef) => {
        try {
          await client.withAbortSignal(signal, () =>
            client.workflow
              .getHandle(shardId)
              .signal(guardCodesSentSignal, { ...counted, codes: sent.codes }),
          );
        } catch (error) {
          // A shard that has ended counts nothing inside its periods any more, the grant included.
          if (!isNotFound(error)) throw error;
        }
      };
      // Side by side: a send that met lost answers waits on this call. Both count once however often
      // they are told (the most codes told; a request counted once), so a retry repeats both.
      await runActivityCall((signal) =>
        Promise.all([tellLimits(signal), guard ? tellShard(signal, guard) : undefined]),
      );
    },

    /**
     * Gives a send that sent nothing back to the target's entity (see `UnsentSend`), and answers
     * whether the entity found that no code went out. No entity, or no such reservation held: it
     * was never granted, so nothing was sent through it.
     */
    async giveBackSend({ targetKey, ...unsent }: GiveBackSendInput): Promise<GiveBackOutcome> {
      return runActivityCall(async (signal) => {
        try {
          await client.withAbortSignal(signal, () =>
            client.workflow.getHandle(entityStart(targetKey).workflowId).executeUpdate(giveBackSendUpdate, {
              args: [unsent],
              updateId: `give-back:${unsent.reservationId}:${unsent.asker.call}`,
            }),
          );
          return { nothingSent: true };
        } catch (error) {
          if (isNotFound(error)) return { nothingSent: true };
          if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
            return { nothingSent: error.cause.type === sendNotCounted };
          }
          throw error;
        }
      });
    },

    /**
     * Asks the target's limits entity for one send, and a window when `opensWindow`. Retried
     * reservations are deduplicated by their ID.
     *
     * When no entity runs for the target (its first send of the period, the common case), nothing of
     * it is counted, so the reservation is granted by starting the entity with it in its input: no
     * workflow task stands between the send and Prelude. An entity that another call started
     * meanwhile fails the start, and is asked.
     */
    async reserveTargetSend({ targetKey, ...request }: ReserveTargetSendInput): Promise<ReservationOutcome> {
      return runActivityCall(async (signal) => {
        const ask = async (): Promise<ReservationOutcome> => {
          try {
            const { earlierExecutions, ...usage } = await client.withAbortSignal(signal, () =>
              client.workflow.getHandle(entityStart(targetKey).workflowId).executeUpdate(reserveSendUpdate, {
                args: [request],
                // Retried attempts of one execution are answered once by Temporal; another execution
                // of the send is asked afresh, so the entity can tell it the earlier ones.
                updateId: request.asker
                  ? `${request.reservationId}:${request.asker.execution}`
                  : request.reservationId,
              }),
            );
            return { granted: true as const, usage, ...(earlierExecutions ? { earlierExecutions } : {}) };
          } catch (error) {
            const refusal = refusalOf(error);
            if (refusal) return refusal;
            throw error;
          }
        };
        const startOrAsk = async () => (await grantByStarting(targetKey, request, signal)) ?? ask();
        // A window's first send is most often its target's first of the period: start first then.
        if (request.opensWindow) return startOrAsk();
        try {
          return await ask();
        } catch (error) {
          if (!isNotFound(error)) throw error;
          return startOrAsk();
        }
      });
    },
  };
}

/** The limits activity. */
export type LimitsActivities = ReturnType<typeof createLimitsActivities>;
