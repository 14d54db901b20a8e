/**
 * Erasing a target: what Temporal holds about one phone number or e-mail address goes, on request
 * (a user's right to erasure). Without this, closed windows stay in history until the namespace's
 * retention period removes them.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { windowIdPrefix } from '../../workflows';
import type { Target } from '../prelude';
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
 * included, which is ended at once) and the webhook ingest runs filed under its key. Deletion is
 * Temporal's: the executions disappear from visibility and their histories are removed shortly after.
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
  // …and every run filed under the target, closed windows and webhook ingests alike.
  const query = `WorkflowId = '${windowId}' OR PreludeTargetKey = '${key}'`;
  for await (const execution of client.workflow.list({ query })) {
    executions.set(`${execution.workflowId}/${execution.runId}`, execution);
  }
  let deleted = 0;
  for (const { workflowId, runId } of executions.values()) {
    if (await deleteExecution(client, workflowId, runId)) deleted += 1;
  }
  return { targetKey: key, deleted };
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
    if (error instanceof WorkflowNotFoundError || (error as { code?: number }).code === GrpcStatus.NOT_FOUND)
      return false;
    throw error;
  }
}
