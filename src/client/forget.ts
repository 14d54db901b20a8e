/**
 * Erasing a target: what Temporal holds about one phone number or e-mail address goes, on request
 * (a user's right to erasure). Without this, closed windows stay in history until the namespace's
 * retention period removes them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { targetKeySearchAttribute } from '../../workflows/search-attributes';
import { targetLimitsWorkflow } from '../../workflows/target-limits';
import { forgetReportsUpdate, targetLimitsIdPrefix } from '../../workflows/target-limits-messages';
import { windowIdPrefix } from '../../workflows/verification-messages';
import type { Target } from '../prelude/schemas';
import { isNotFound } from './calls';
import { targetKey } from './ids';
import { normalize } from './input';
import type { VerificationClientOptions } from './verification';
import { loadPRetry } from '../p-retry';

/** What {@link forgetTarget} erased. */
export interface ForgetResult {
  /** The target's key (an HMAC): the only trace left, in our answer, not in Temporal. */
  targetKey: string;
  /**
   * Workflow executions deleted: every window run of the target, and the runs of its limits entity
   * that held closed windows' reports.
   */
  deleted: number;
}

/**
 * Deletes every workflow execution about a target: its verification windows (the open one
 * included, which is ended at once), filed under its key. Deletion is Temporal's, and asynchronous:
 * the open window goes at once; a run that closed moments before goes once the server has saved that
 * its close was processed (every `history.transferProcessorUpdateAckInterval`, 30 s by default).
 * The target's limits entity keeps its counts (times only, under the key: forgetting must not reset
 * a target's limits), but drops the reports it had yet to make and starts afresh, and its earlier
 * runs, which held closed windows' reports (the target in them), are deleted.
 *
 * @throws VerificationError `invalid_request` for a malformed target.
 */
export async function forgetTarget(
  client: Client,
  target: Target,
  options: Pick<VerificationClientOptions, 'idKey'>,
): Promise<ForgetResult> {
  const key = targetKey(normalize(target), options.idKey);
  const windowId = `${windowIdPrefix}${key}`;
  const executions = new Map<string, { workflowId: string; runId?: string }>();
  // The newest window by ID, even if visibility has not indexed it yet…
  executions.set(windowId, { workflowId: windowId });
  // …and every window run filed under the target; the limits entity apart (below).
  const query =
    `(WorkflowId = '${windowId}' OR ${targetKeySearchAttribute.name} = '${key}') ` +
    `AND WorkflowType != '${targetLimitsWorkflow.name}'`;
  for await (const execution of client.workflow.list({ query })) {
    executions.set(`${execution.workflowId}/${execution.runId}`, execution);
  }
  for (const run of await entityRunsWithReports(client, `${targetLimitsIdPrefix}${key}`)) {
    executions.set(`${run.workflowId}/${run.runId}`, run);
  }
  let deleted = 0;
  for (const { workflowId, runId } of executions.values()) {
    if (await deleteExecution(client, workflowId, runId)) deleted += 1;
  }
  await untilGone(client, windowId);
  return { targetKey: key, deleted };
}

/**
 * Has the target's limits entity drop its reports and continue as new, and names its closed runs:
 * the one that just ended, and earlier ones (their histories may hold reports). The open run holds
 * the counts only.
 */
async function entityRunsWithReports(
  client: Client,
  entityId: string,
): Promise<{ workflowId: string; runId: string }[]> {
  const handle = client.workflow.getHandle(entityId);
  let before;
  try {
    before = await handle.describe();
    if (before.status.name === 'RUNNING') await handle.executeUpdate(forgetReportsUpdate);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const runs = [{ workflowId: entityId, runId: before.runId }];
  for await (const run of client.workflow.list({
    query: `WorkflowId = '${entityId}' AND ExecutionStatus != 'Running'`,
  })) {
    runs.push({ workflowId: entityId, runId: run.runId });
  }
  // The run the update ended continues as new at once; the new one is not to be deleted.
  const open = before.status.name === 'RUNNING' ? await nextRun(handle, before.runId) : undefined;
  return runs.filter((run) => run.runId !== open);
}

/** The run after `runId` of a workflow that continues as new (waiting up to 10 s for it). */
async function nextRun(handle: WorkflowHandle, runId: string): Promise<string | undefined> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { runId: current, status } = await handle.describe();
    if (current !== runId) return status.name === 'RUNNING' ? current : undefined;
    await sleep(100);
  }
  return runId;
}

/** An execution Temporal still describes: its deletion is under way. */
class StillThere extends Error {}

/**
 * Waits (up to 30 s) until the window's executions are gone from Temporal's store, so that the
 * answer means what it says; visibility listings follow within seconds. Past 30 s the deletion is
 * left to finish on its own; any other failure to describe the window is the caller's.
 */
async function untilGone(client: Client, workflowId: string): Promise<void> {
  const { default: pRetry } = await loadPRetry();
  try {
    await pRetry(
      async () => {
        try {
          await client.workflow.getHandle(workflowId).describe();
        } catch (error) {
          if (error instanceof WorkflowNotFoundError) return;
          throw error;
        }
        throw new StillThere(`${workflowId} is still being deleted`);
      },
      {
        retries: Infinity,
        minTimeout: 100,
        maxTimeout: 1_000,
        maxRetryTime: 30_000,
        shouldRetry: ({ error }) => error instanceof StillThere,
      },
    );
  } catch (error) {
    if (!(error instanceof StillThere)) throw error;
  }
}

async function deleteExecution(client: Client, workflowId: string, runId?: string): Promise<boolean> {
  try {
    await client.workflowService.deleteWorkflowExecution({
      namespace: client.options.namespace,
      workflowExecution: { workflowId, runId },
    });
    return true;
  } catch (error) {
    // Already gone (listed twice, or deleted by retention in between).
    if (isNotFound(error)) return false;
    throw error;
  }
}
