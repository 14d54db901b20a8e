/**
 * What the workflow suites read off a window beyond its state: the report of its outcome (Watch
 * feedback, the success message), which the window hands to its target's limits entity.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { outcomeReportSignal } from '../../workflows/target-limits-messages';
import { targetLimitsIdOf } from '../../workflows/verification-messages';
import { eventually } from './eventually';

/**
 * Waits for the window's run to complete, then names the limits entity it handed its outcome report
 * to, or `undefined` when it handed none over (nothing to report: no feedback asked for, no success
 * message). Deterministic: the window hands its report over before it completes.
 */
export async function outcomeReportOf(client: Client, windowId: string): Promise<string | undefined> {
  await client.workflow.getHandle(windowId).result();
  const entityId = targetLimitsIdOf(windowId);
  return (await reportSignalIndex(client, entityId)) === undefined ? undefined : entityId;
}

/** Waits until the entity has made the window's outcome report (it fails if the window handed none over). */
export async function outcomeReported(client: Client, windowId: string): Promise<string> {
  const entityId = await outcomeReportOf(client, windowId);
  if (!entityId) throw new Error(`the window ${windowId} handed over no outcome report`);
  const handle = client.workflow.getHandle(entityId);
  // Made: the entity scheduled a call after the hand-over and is quiet again, with no call and no
  // workflow task pending. Between two calls of one report a workflow task is always pending.
  await eventually(
    async () => {
      const { raw } = await handle.describe();
      const events = (await handle.fetchHistory()).events ?? [];
      const signalled = await reportSignalIndex(client, entityId);
      const calls = events.slice(signalled).filter((e) => e.activityTaskScheduledEventAttributes).length;
      return calls > 0 && (raw.pendingActivities ?? []).length === 0 && !raw.pendingWorkflowTask;
    },
    { description: `the outcome report of ${windowId} made by ${entityId}`, timeoutMs: 20_000 },
  );
  return entityId;
}

/** Where in the entity's history the report was handed over, if it was. */
async function reportSignalIndex(client: Client, entityId: string): Promise<number | undefined> {
  const history = await client.workflow
    .getHandle(entityId)
    .fetchHistory()
    .catch((error: unknown) => {
      if (error instanceof WorkflowNotFoundError) return { events: [] };
      throw error;
    });
  const at = (history.events ?? []).findIndex(
    (e) => e.workflowExecutionSignaledEventAttributes?.signalName === outcomeReportSignal.name,
  );
  return at < 0 ? undefined : at;
}
