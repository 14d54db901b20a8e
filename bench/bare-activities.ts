/**
 * The bare baselines' activities: the same two Prelude calls the project's window makes, on the
 * same PreludeClient, with nothing around them (no lifecycle mapping, no metadata, no cancellation).
 * The bound's send also starts a per-target record first, as the project's first send of a window
 * starts its target's limits entity.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { PreludeClient, Target } from '../src/prelude';

/** The bound's per-target record of a window: a delayed start that never runs within a bench. */
export function bareRecordIdOf(windowId: string): string {
  return `bench-bound-record-${windowId}`;
}

/** The records this process started: on a server that outlives the run, they are terminated at its end. */
export const startedRecordIds: string[] = [];

/** Builds the bare activities around a Prelude client (and the client that starts the records). */
export function createBareActivities(prelude: PreludeClient, client: Client, taskQueue: string) {
  return {
    async bareCreate(target: Target) {
      return prelude.verification.create({ target });
    },
    async bareCheck(target: Target, code: string) {
      return prelude.verification.check({ target, code });
    },
    /**
     * The least a durable per-target count can cost before the create: one workflow start, delayed
     * (no task runs), as the limits entity's first reservation is granted.
     */
    async bareRecordAndCreate(target: Target) {
      const windowId = Context.current().info.workflowExecution?.workflowId;
      if (!windowId) throw new Error("a bound's send runs in its window");
      await client.workflow.start('bareStart', {
        workflowId: bareRecordIdOf(windowId),
        taskQueue,
        workflowIdConflictPolicy: 'FAIL',
        startDelay: '1 hour',
      });
      startedRecordIds.push(bareRecordIdOf(windowId));
      return prelude.verification.create({ target });
    },
  };
}

/** The bare activities, as the bare workflows proxy them. */
export type BareActivities = ReturnType<typeof createBareActivities>;
