/**
 * Erasing a target: what Temporal holds about one phone number or e-mail address goes, on request
 * (a user's right to erasure). Without this, closed windows stay in history until the namespace's
 * retention period removes them.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { windowIdPrefix } from '../../workflows/messages';
import type { Target } from '../prelude/schemas';
import { isNotFound } from './calls';
import { targetKey } from './ids';
import { normalize } from './input';
import type { VerificationClientOptions } from './verification';

/** What {@link forgetTarget} erased. */
export interface ForgetResult {
  /** The target's key (an HMAC): the only trace left, in our answer, not in Temporal. */
  targetKey: string;
  /** Workflow executions deleted: every window run and every webhook ingest run of the target. */
  deleted: number;
}

/**
 * Deletes every workflow execution about a target: its verification windows (the open one
 * included, which is ended at once), their outcome reports and the webhook ingest runs filed under
 * its key. Deletion is Temporal's, and asynchronous: the open window goes at once; a run that closed
 * moments before goes once the server has saved that its close was processed (every
 * `history.transferProcessorUpdateAckInterval`, 30 s by default). The target's limits entity is
 * kept (times only, under the key): forgetting must not reset a target's limits.
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
  // …and every run filed under the target, closed windows and webhook ingests alike. The limits
  // entity stays: it holds only times under the key, and forgetting must not reset a target's limits.
  const query = `(WorkflowId = '${windowId}' OR PreludeTargetKey = '${key}') AND WorkflowType != 'targetLimitsWorkflow'`;
  for await (const execution of client.workflow.list({ query })) {
    executions.set(`${execution.workflowId}/${execution.runId}`, execution);
  }
  let deleted = 0;
  for (const { workflowId, runId } of executions.values()) {
    if (await deleteExecution(client, workflowId, runId)) deleted += 1;
  }
  await untilGone(client, windowId);
  return { targetKey: key, deleted };
}

/** An execution Temporal still describes: its deletion is under way. */
class StillThere extends Error {}

/**
 * Waits (up to 30 s) until the window's executions are gone from Temporal's store, so that the
 * answer means what it says; visibility listings follow within seconds. Past 30 s the deletion is
 * left to finish on its own; any other failure to describe the window is the caller's.
 */
async function untilGone(client: Client, workflowId: string): Promise<void> {
  // p-retry ships only as an ES module; this package is CommonJS.
  const { default: pRetry } = await import('p-retry');
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
