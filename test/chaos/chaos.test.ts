/**
 * The chaos run, short: 30 flows over HTTP through the product's own processes (dev server, sandbox
 * with 500s, 429s, latency and 10 % of its creates', checks' and Notify sends' answers lost after
 * they took effect, 10 % of its checks cut before they did, worker, service; each flow resends once,
 * and each verified number is sent the success message) while the worker is killed a few times and
 * the service once (`npm run chaos` runs 150 flows, 30+ worker kills and a dev server kill). Then the same flows through rolling
 * deploys of the worker instead of kills, with every Prelude call taking up to 0.4 s: a deploy is
 * no crash, so nothing may be made twice or counted on the safe side.
 */
import { runChaos, type ChaosOptions } from './chaos';

/**
 * A run of the suite's size: its figures printed for the record, and its progress too when a flow
 * came out wrong.
 */
async function shortRun(options: Partial<ChaosOptions>) {
  const lines: string[] = [];
  const report = await runChaos({
    stuckAfterMs: 30_000,
    openBudgetMs: 45_000,
    deadlineMs: 70_000,
    // The test setup has just written the bundle.
    bundle: false,
    ...options,
    log: (line) => lines.push(line),
  });
  console.log(JSON.stringify(report.summary));
  if (report.summary.correct !== report.summary.flows) console.log(lines.join('\n'));
  return report;
}

describe('chaos', () => {
  it('verifies every flow whose right code was sent, through worker and service crashes', async () => {
    const report = await shortRun({
      flows: 30,
      concurrency: 10,
      killEveryMs: 3_000,
      minWorkerKills: 4,
      maxWorkerKills: 5,
      killDevServer: false,
      killService: true,
      // Lost answers and kills together found most of what the windows miscounted.
      dropAnswerRate: 0.1,
      // Checks cut before they reach Prelude: attempts of unknown fate that spent nothing, which
      // the windows must not count (they read Prelude's record).
      cutCheckRate: 0.1,
      // Each flow resends once in its open window: resends meet the kills too.
      resend: true,
      // Each verified number gets the success message: once, whatever was lost or killed.
      env: { VERIFY_SUCCESS_TEMPLATE_ID: 'template_sandbox_verified' },
    });
    const { correct, checks_used_up: usedUp } = report.summary;
    // Lost answers can spend a window's checks on its wrong code: the run judges such a flow
    // `checks_used_up` only when the sandbox's call log shows every counted check spent.
    expect(correct + usedUp).toBe(30);
    expect(report.summary).toMatchObject({
      flows: 30,
      wrong_outcome: 0,
      stuck: 0,
      // Checks and sends are counted as Prelude applied them (its call log says which): none lost; a
      // check too many, or a code the window did not count, only after a crash cut an attempt.
      lost_checks: 0,
      duplicate_sends_without_a_crash: 0,
      // Nor more than the sandbox sent: only a crash leaves a send's fate unknown.
      overcounted_sends_without_a_crash: 0,
      // Each code listed once in the window's attempts, under its own report.
      codes_listed_twice_without_a_crash: 0,
      // The target's limits count them too (read from each target's entity, all of them read).
      limit_sends_missed_without_a_crash: 0,
      // Nor more: a send that sent nothing gives its reservation back.
      limit_sends_overcounted_without_a_crash: 0,
      limit_sends_unread: 0,
      overcounted_checks_without_a_crash: 0,
      messages_sent_twice: 0,
      // Nor a code sent once the number was verified.
      codes_after_verified: 0,
    });
    expect(report.summary.worker_kills).toBeGreaterThanOrEqual(3);
    expect(report.summary.service_kills).toBe(1);
  }, 120_000);

  it('makes no Prelude call twice and counts every one exactly, through rolling deploys of the worker', async () => {
    const report = await shortRun({
      flows: 30,
      concurrency: 8,
      killEveryMs: 2_000,
      // Each worker outage a deploy: the new worker up, then SIGTERM to the old one.
      deploy: true,
      // A deploy takes longer than a kill (the new worker is up before the old one goes): the
      // flows are spread over more intervals so that several land among them.
      minWorkerKills: 8,
      maxWorkerKills: 8,
      killDevServer: false,
      killService: false,
      resend: true,
      // Prelude takes up to 0.4 s a call, carried out even when its caller gives up: calls are in
      // flight when a deploy comes.
      env: { SANDBOX_PROCESSING_MS: '400' },
    });
    expect(report.summary).toMatchObject({
      flows: 30,
      correct: 30,
      // Every old worker left on its own, its calls finished: no deploy was a crash.
      worker_deploys_killed: 0,
      // A check spent twice (the user loses an attempt) or a code sent twice: what a cancelled call
      // made again costs. The SDK's default grace of 0 spent 3 checks twice in 60 flows.
      checks_spent_again: 0,
      codes_sent_again: 0,
      lost_checks: 0,
      overcounted_checks: 0,
      duplicate_sends: 0,
      overcounted_sends: 0,
      codes_listed_twice: 0,
      limit_sends_missed: 0,
      limit_sends_overcounted: 0,
      limit_sends_unread: 0,
    });
    expect(report.summary.worker_deploys).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
