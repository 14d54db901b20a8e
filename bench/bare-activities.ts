/**
 * The bare baselines' activities: the same two Prelude calls the project's window makes, on the
 * same PreludeClient, with nothing around them (no lifecycle mapping, no metadata, no cancellation).
 * The bound's send also starts a per-target record first, as the project's first send of a window
 * starts its target's limits entity.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { PreludeClient, Target } from '../src/prelude';

/** The bound's per-target records (`<prefix><uuid>`), delayed starts that never run within a bench. */
export const bareRecordIdPrefix = 'bench-bound-record-';

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
      await client.workflow.start('bareStart', {
        workflowId: `${bareRecordIdPrefix}${randomUUID()}`,
        taskQueue,
        workflowIdConflictPolicy: 'FAIL',
        startDelay: '1 hour',
      });
      return prelude.verification.create({ target });
    },
  };
}

/** The bare activities, as the bare workflows proxy them. */
export type BareActivities = ReturnType<typeof createBareActivities>;
