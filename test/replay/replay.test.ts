/**
 * Workflow code must replay the histories of runs already in flight. These histories were recorded
 * from real runs (`npm run histories:record`), one folder per release whose code started them, with
 * both ways of calling Prelude, encrypted under the fixtures' key ring. A change that makes workflow
 * code issue different commands for any of them fails here, before it can break running windows:
 * a behaviour change is a `patched()` branch.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { dataConverterFor, parseKeyRing } from '../../src/codec';
// Every workflow the worker runs: the bundle's entry.
import * as workflows from '../../workflows';

const historiesDir = join(__dirname, '..', 'fixtures', 'histories');
/** Release folders, oldest first (`0.9.0` before `0.10.0`). */
const versions = readdirSync(historiesDir).sort((a, b) => {
  const [pa, pb] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if (pa![i] !== pb![i]) return pa![i]! - pb![i]!;
  return 0;
});

interface Recorded {
  /** The run's own workflow ID (workflow code may build IDs from it), as its history records it. */
  workflowId: string;
  /** `<version>/<file>`, to name a failure. */
  label: string;
  history: unknown;
}

type StartedHistory = {
  events: {
    workflowExecutionStartedEventAttributes?: { workflowId?: string; workflowType?: { name: string } };
  }[];
};

function recordedHistories(version: string): Recorded[] {
  const dir = join(historiesDir, version);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const history = JSON.parse(readFileSync(join(dir, file), 'utf8')) as StartedHistory;
      const label = `${version}/${file.replace(/\.json$/, '')}`;
      const workflowId = history.events[0]?.workflowExecutionStartedEventAttributes?.workflowId ?? label;
      return { workflowId, label, history };
    });
}

/** The data converter a version's histories were written with. */
function dataConverterOf(version: string) {
  const ring = join(historiesDir, version, 'key-ring.txt');
  return dataConverterFor(existsSync(ring) ? parseKeyRing(readFileSync(ring, 'utf8').trim()) : undefined);
}

async function replay(options: ReplayWorkerOptions, histories: Recorded[]) {
  const labels = new Map(histories.map(({ workflowId, label }) => [workflowId, label]));
  const failures: { label: string; error: unknown }[] = [];
  for await (const result of Worker.runReplayHistories(options, histories)) {
    if (result.error)
      failures.push({ label: labels.get(result.workflowId) ?? result.workflowId, error: result.error });
  }
  return failures;
}

const typesIn = (histories: Recorded[]) =>
  new Set(
    histories.map(
      ({ history }) =>
        (history as StartedHistory).events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name,
    ),
  );

describe('recorded workflow histories', () => {
  it('cover every workflow type the worker runs, in the newest version, with both call modes', () => {
    const newest = recordedHistories(versions.at(-1)!);
    expect([...typesIn(newest)].sort()).toEqual(Object.keys(workflows).sort());
    const names = newest.map(({ label }) => label.split('/')[1]!);
    expect(names.filter((name) => name.startsWith('local-')).map((name) => name.slice(6))).toEqual(
      names.filter((name) => name.startsWith('remote-')).map((name) => name.slice(7)),
    );
  });

  it.each(versions)('replay with the current workflow code (%s)', async (version) => {
    const failures = await replay(
      {
        workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! },
        dataConverter: dataConverterOf(version),
      },
      recordedHistories(version),
    );
    expect(failures.map(({ label, error }) => `${label}: ${String(error)}`)).toEqual([]);
  });

  it('catch a workflow change that issues different commands', async () => {
    const newest = versions.at(-1)!;
    const expired = recordedHistories(newest).filter(({ label }) => label === `${newest}/local-expired`);
    const failures = await replay(
      {
        workflowsPath: require.resolve('../fixtures/replay/altered-verification-workflow'),
        dataConverter: dataConverterOf(newest),
      },
      expired,
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error).toBeInstanceOf(DeterminismViolationError);
  });
});
