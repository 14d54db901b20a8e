/**
 * What the workflow suites read off a window beyond its state: the run that reports its outcome
 * (Watch feedback, the success message), found in the window's own history.
 */
import type { Client } from '@temporalio/client';

/**
 * Waits for the window's run to complete, then names the child run it started to report its
 * outcome, or `undefined` when it started none (nothing to report: no feedback asked for, no
 * success message). Deterministic: the window starts that run before it completes.
 */
export async function outcomeReportOf(client: Client, windowId: string): Promise<string | undefined> {
  const handle = client.workflow.getHandle(windowId);
  await handle.result();
  const history = await handle.fetchHistory();
  const started = history.events?.find(
    (event) => event.startChildWorkflowExecutionInitiatedEventAttributes,
  )?.startChildWorkflowExecutionInitiatedEventAttributes;
  return started?.workflowId ?? undefined;
}

/** Waits for the window's outcome report to complete (it fails if the window started none). */
export async function outcomeReported(client: Client, windowId: string): Promise<string> {
  const reportId = await outcomeReportOf(client, windowId);
  if (!reportId) throw new Error(`the window ${windowId} started no outcome report`);
  await client.workflow.getHandle(reportId).result();
  return reportId;
}
