/**
 * Faults on a production-shaped cluster while verification flows run over HTTP, spread over both
 * services: one project worker killed with SIGKILL (and started again), then each Temporal service
 * a request passes through (history, matching, frontend) killed and restarted in turn, then
 * PostgreSQL. Each flow is the chaos run's with a resend (test/chaos/flow.ts: open, code from the
 * inbox, ask for it again and read it again, a wrong code and the same request again, the right
 * code, the window until verified), and the flows are counted by its rules against the
 * sandbox's record of the calls it carried out (`GET /sandbox/calls`): every flow correct, no check
 * spent that the window does not know of, no code sent that the window does not count (but where a
 * fault cut the send: a send's local call that reached Prelude before its workflow task was lost is
 * run again, and the window cannot tell the first run went out).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadSection, verifyPolicySettings } from '../../temporal.config';
import { envSection } from '../../src/env';
import { account, cutByCrash } from '../chaos/chaos';
import { runFlow, type FlowResult } from '../chaos/flow';
import type { Part } from '../../tools/processes';
import type { Cluster } from '../../tools/cluster';
import { clusterForSuite, phoneTarget } from './support';

/** A fault the suite caused: which part, and how many flows were in flight when it hit. */
interface Fault {
  part: string;
  inFlight: number;
  /** When the kill was sent (`Date.now()`). */
  at: number;
  /** From the kill until the part was ready again. */
  downMs: number;
}

describe('faults on a production-shaped cluster', () => {
  let cluster: Cluster;
  const flows: FlowResult[] = [];
  const faults: Fault[] = [];

  beforeAll(async () => {
    cluster = await clusterForSuite({
      env: {
        // As the chaos run: resends are not held back by the sandbox's or our cooldown.
        SANDBOX_MIN_RETRY_DELAY_SECONDS: '0',
        VERIFY_RESEND_COOLDOWN_SECONDS: '0',
        // Two sends a flow, six at a time, for as long as the faults last: more than the default
        // country burst allows (the guards have their own tests).
        GUARD_COUNTRY_SENDS: '100000',
        GUARD_COUNTRY_BURST: '10000',
      },
    });
    // A resend refused as too many must meet the window's sends all used, as the parts have them.
    const resend = loadSection(envSection({ maxSends: verifyPolicySettings.maxSends }), cluster.env);
    const abort = new AbortController();
    let inFlight = 0;
    let faultsDone = false;
    const minFlows = 30;
    let launched = 0;
    const phones = new Set<string>();
    const nextPhone = () => {
      for (;;) {
        const { value } = phoneTarget();
        if (!phones.has(value)) return phones.add(value) && value;
      }
    };
    // Six flows at a time, until the faults are over and at least `minFlows` have run.
    const running = Promise.all(
      Array.from({ length: 6 }, async () => {
        while (!faultsDone || launched < minFlows) {
          const index = launched++;
          inFlight += 1;
          const flow = await runFlow(index, nextPhone(), {
            serviceUrl: cluster.serviceUrls[index % 2]!,
            sandboxUrl: cluster.sandboxUrl,
            apiToken: cluster.apiToken,
            signal: abort.signal,
            openBudgetMs: 120_000,
            stuckAfterMs: 60_000,
            wrongCode: 'ZZZZZZ',
            resend,
          });
          inFlight -= 1;
          flows.push(flow);
        }
      }),
    );
    const fault = async (part: Part, pauseMs: number) => {
      await sleep(3_000);
      const start = Date.now();
      faults.push({ part: part.spec.name, inFlight, at: start, downMs: 0 });
      await part.kill();
      await sleep(pauseMs);
      await part.start(AbortSignal.timeout(120_000));
      faults.at(-1)!.downMs = Date.now() - start;
    };
    try {
      await fault(cluster.workers[0]!, 500);
      await fault(cluster.temporal!.history, 500);
      await fault(cluster.temporal!.matching, 500);
      await fault(cluster.temporal!.frontend, 500);
      await fault(cluster.postgres!, 500);
    } finally {
      faultsDone = true;
    }
    await running;
  }, 400_000);
  afterAll(async () => {
    // What the faults cost the users, for the person reading the run.
    const slowest = Math.max(0, ...flows.map((f) => f.finishedAt - f.startedAt));
    process.stderr.write(
      `${JSON.stringify({
        flows: flows.length,
        correct: flows.filter((f) => f.verdict === 'correct').length,
        flows_that_retried: flows.filter((f) => f.steps.some((s) => s.failedAt.length > 0)).length,
        slowest_flow_ms: slowest,
        faults,
      })}\n`,
    );
    await cluster?.stop();
  }, 60_000);

  it('hit every part mid-flow', () => {
    expect(faults.map(({ part }) => part)).toEqual([
      'worker-1',
      'temporal-history',
      'temporal-matching',
      'temporal-frontend',
      'postgres',
    ]);
    for (const { inFlight } of faults) expect(inFlight).toBeGreaterThan(0);
    expect(cluster.workers[0]!.stats.kills).toBe(1);
    for (const service of ['history', 'matching', 'frontend'] as const) {
      expect(cluster.temporal![service].stats.kills).toBe(1);
    }
    expect(cluster.postgres!.stats.kills).toBe(1);
  });

  it('answered every flow right: each right code verified its window', () => {
    expect(flows.length).toBeGreaterThanOrEqual(30);
    const wrong = flows.filter((flow) => flow.verdict !== 'correct');
    expect(wrong.map(({ index, verdict, reason }) => ({ index, verdict, reason }))).toEqual([]);
  });

  it('lost nothing: no check or send the sandbox carried out that the window does not count', async () => {
    const accounting = await account(flows, {
      serviceUrl: cluster.serviceUrls[0]!,
      sandboxUrl: cluster.sandboxUrl,
      apiToken: cluster.apiToken,
      idKey: cluster.idKey,
    });
    const sendCut = (flow: FlowResult) =>
      cutByCrash(
        flow,
        ['send'],
        faults.map(({ at }) => at),
      );
    const off = accounting
      .filter((a) => a.lostChecks > 0 || (a.duplicateSends > 0 && !sendCut(a.flow)))
      .map((a) => ({ flow: a.flow.index, lostChecks: a.lostChecks, duplicateSends: a.duplicateSends }));
    expect(off).toEqual([]);
    // The accounting read every flow's window and calls: a right code checked, a code sent.
    expect(accounting.every((a) => a.evidence.sandboxCalls.length >= 2)).toBe(true);
  });
});
