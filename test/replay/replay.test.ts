/**
 * Workflow code must replay the histories of runs already in flight. These histories were recorded
 * from real runs (`npm run histories:record`); a change that makes workflow code issue different
 * commands for them fails here, before it can break running windows in production.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';

const historiesDir = join(__dirname, '..', 'fixtures', 'histories');

function recordedHistories(): { workflowId: string; history: unknown }[] {
  return readdirSync(historiesDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({
      workflowId: file.replace(/\.json$/, ''),
      history: JSON.parse(readFileSync(join(historiesDir, file), 'utf8')) as unknown,
    }));
}

async function replay(options: ReplayWorkerOptions, histories = recordedHistories()) {
  const failures: { workflowId: string; error: unknown }[] = [];
  for await (const result of Worker.runReplayHistories(options, histories)) {
    if (result.error) failures.push({ workflowId: result.workflowId, error: result.error });
  }
  return failures;
}

describe('recorded workflow histories', () => {
  it('cover every workflow type the worker runs', () => {
    const types = new Set<string>();
    for (const { history } of recordedHistories()) {
      const started = (history as { events: Record<string, { workflowType?: { name: string } }>[] }).events[0]
        ?.workflowExecutionStartedEventAttributes;
      if (started?.workflowType) types.add(started.workflowType.name);
    }
    expect([...types].sort()).toEqual([
      'notificationWorkflow',
      'verificationWorkflow',
      'webhookIngestWorkflow',
    ]);
    expect(recordedHistories().length).toBeGreaterThanOrEqual(8);
  });

  it('replay with the current workflow code', async () => {
    const failures = await replay({ workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! } });
    expect(failures.map(({ workflowId, error }) => `${workflowId}: ${String(error)}`)).toEqual([]);
  });

  it('catch a workflow change that issues different commands', async () => {
    const verificationHistories = recordedHistories().filter(({ workflowId }) => workflowId === 'expired');
    const failures = await replay(
      { workflowsPath: require.resolve('../fixtures/replay/altered-verification-workflow') },
      verificationHistories,
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error).toBeInstanceOf(DeterminismViolationError);
  });
});
