/**
 * A team that replay-tests its own worker (`Worker.runReplayHistories` with the plugin) replays our
 * windows' recorded histories as well: the plugin gives the replay worker our workflows, bundled
 * beside the team's, and the codec the histories are encrypted with.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { parseKeyRing } from '../../src/codec';
import { verificationPlugin } from '../../src/temporal-plugin';

const historiesDir = join(__dirname, '..', 'fixtures', 'histories');
const newest = join(historiesDir, readdirSync(historiesDir).sort().at(-1)!);

it("replays the newest recorded histories in a team's replay worker that has the plugin", async () => {
  const histories = readdirSync(newest)
    .filter((file) => file.endsWith('.json'))
    .map((file) => {
      const history = JSON.parse(readFileSync(join(newest, file), 'utf8'));
      const workflowId: string = history.events[0].workflowExecutionStartedEventAttributes.workflowId;
      return { workflowId, history };
    });
  const plugin = verificationPlugin({
    // Replay calls no activity: the client is never used.
    prelude: { apiKey: 'unused', baseUrl: 'http://127.0.0.1:9' },
    keyRing: parseKeyRing(readFileSync(join(newest, 'key-ring.txt'), 'utf8').trim()),
  });
  const failures: { workflowId: string; error: unknown }[] = [];
  const replayed = Worker.runReplayHistories(
    { workflowsPath: require.resolve('../fixtures/greeting-workflow'), plugins: [plugin] },
    histories,
  );
  for await (const { workflowId, error } of replayed) if (error) failures.push({ workflowId, error });
  expect(histories.length).toBeGreaterThan(0);
  expect(failures).toEqual([]);
}, 120_000);
