/**
 * `npm run chaos`: verification flows over HTTP while the parts crash.
 *
 * The parts run as separate processes, started as a user starts them: a Temporal dev server whose
 * state is a SQLite file, and through the product's CLI (`node dist/src/cli.js …`) the Prelude
 * sandbox (answering a share of 500s and 429s, with latency), the worker and the HTTP service, all
 * on free ports of 127.0.0.1 and with the same privacy keys. CHAOS_FLOWS flows (default 150),
 * CHAOS_CONCURRENCY at a time (default 10), each for its own phone number: `POST /verifications`,
 * the code from the sandbox's inbox, a wrong code, the same request again (same Idempotency-Key;
 * every POST carries one), the right code, `GET /verifications/:id` until it reads `verified` (see
 * ./chaos/flow.ts); with CHAOS_RESEND=1, a second `POST /verifications` in the open window once the
 * code has come (the run's cooldown and Prelude's resend delay are 0), and the code read again.
 * Meanwhile the worker is killed (`SIGKILL` to its process group) every CHAOS_KILL_EVERY_MS (default
 * 4000) and restarted after CHAOS_RESTART_PAUSE_MS (default 500); once, in place of a worker kill,
 * the dev server (restarted on the same SQLite file and port), and once the HTTP service. The flows
 * are spread over at least CHAOS_MIN_WORKER_KILLS (default 30) kill intervals, so that many kills
 * land among them; CHAOS_MAX_WORKER_KILLS caps the kills (the last flows then run in calm). CHAOS_FREEZE_MS (default 0) makes each worker kill a freeze of that long
 * instead (`SIGSTOP`, as a paused VM): a new worker starts after the pause, and the frozen one then
 * resumes, carries on what it held for a few seconds (late), and is killed. CHAOS_DEPLOY=1 makes
 * each a rolling deploy instead: a new worker is started and ready, then the old one gets `SIGTERM`
 * to finish its work in flight and exit (killed if it is still there 30 s later). A deploy is no
 * crash: every `_without_a_crash` count below must stay 0 through it. The sandbox's fault knobs
 * (SANDBOX_ERROR_RATE, default 0.1; SANDBOX_RATE_LIMIT_RATE, 0.05; SANDBOX_LATENCY_MS, 20),
 * VERIFY_*, GUARD_*, WORKER_* and PRELUDE_TIMEOUT_MS are passed on from the environment.
 * CHAOS_DROP_RATE (default 0) also has the sandbox carry out that share of Verify creates and
 * checks, and of Notify sends, and then cut the connection, as a network cut would: answers lost
 * with no crash, which the windows must count all the same, and after which no message is sent
 * twice. CHAOS_CUT_RATE (default 0) has the sandbox close the connection of that share of Verify
 * checks before carrying them out: attempts of unknown fate that spent nothing, which the windows
 * must not count (they read Prelude's record: `overcounted_checks_without_a_crash` stays 0).
 * CHAOS_CUT_CREATE_RATE (default 0) does the same to Verify creates: attempts that sent nothing.
 *
 * It prints one JSON line and exits 1 if any flow is wrong or stuck, lost a check, got a Notify
 * message twice, or counted a check too many, a code too few, or (at the target's limits) a code too
 * many or too few where no crash can explain it:
 * - `correct`: the window reads `verified` after the right code was answered `success`;
 * - `checks_used_up`: the right code (or the wrong one) met its window closed `max_checks`, and the
 *   sandbox's call log shows every one of those checks spent, none of them a success (answers lost
 *   and asked again, as `CHAOS_DROP_RATE` does, can spend a window's checks on its wrong code):
 *   Prelude's own answer, so not a failure of the run. Without that proof the flow is a
 *   `wrong_outcome`;
 * - `wrong_outcome`: the right code was answered anything but `success` (`failure`,
 *   `expired_or_not_found`, an error), the window closed other than `verified`, or another definite
 *   answer was wrong (the wrong code not answered `failure`, the same Idempotency-Key answered
 *   differently, a refused first send, unless `too_many_attempts` after sends answered
 *   `prelude_unavailable`: their attempts filled Prelude's window, and the flow checks the codes
 *   they sent);
 * - `stuck`: neither, within CHAOS_STUCK_MS (default 60 s) of the right code's first send (or, before
 *   that, 120 s from the flow's start, or the run's deadline CHAOS_DEADLINE_MS);
 * - `lost_checks`: checks the sandbox spent on a flow's number (answered `success` or `failure`,
 *   from its call log) beyond the window's `checks_used`, summed over the flows;
 * - `overcounted_checks`: the window's `checks_used` beyond the checks the sandbox spent, summed;
 *   `overcounted_checks_without_a_crash`: those of flows where no worker or dev server kill fell
 *   while a check was under way. Only an attempt cut by a crash has an unknown fate, so this is 0;
 * - `duplicate_sends`: codes the sandbox sent to a flow's number (create calls answered 200) beyond
 *   the sends the window counted, summed. Its `attempts` less those a delivery webhook added (trigger
 *   `auto_retry`: an attempt the window did not know of; the sandbox makes no automatic retries, so
 *   each is a code the window missed). `duplicate_sends_without_a_crash`: those of flows where no
 *   worker or dev server kill fell while the send was under way, nor while the window made a send
 *   of its own (a fallback, with `VERIFY_FALLBACK_CHANNELS`: from 8 s before each create the sandbox
 *   got outside the flow's send to just after it; the other `_without_a_crash` counts of sends
 *   alike). A kill after a send's local call reached Prelude and before its workflow task completed
 *   runs the call again, and the window cannot tell the first run went out: one code it does not
 *   count;
 * - `overcounted_sends`: the other way, the sends the window counted beyond the codes the sandbox
 *   sent, summed: a send whose fate was unknown (an execution cut by a crash, or an attempt whose
 *   answer was lost) that never reached Prelude, the safe side. `overcounted_sends_without_a_crash`
 *   must be 0: an answer lost with no crash was an attempt the sandbox carried out;
 * - `codes_listed_twice`: a window's `auto_retry` attempts beyond the codes it did not count, summed:
 *   each code the window missed shows as one such attempt when its report comes, so any more are
 *   reports of codes the window counted, listed beside their own records (a report that came before
 *   its send recorded its code). `codes_listed_twice_without_a_crash`: those of flows where no kill
 *   fell while the send was under way. A count from the reports that came by the end of the run;
 * - `limit_sends_missed`: codes the sandbox sent to a flow's number beyond the sends its target's
 *   limits entity counts (read from the entity itself: what the per-target limit refuses on), summed;
 *   `limit_sends_missed_without_a_crash`: those of flows where no kill fell during the send, which
 *   must be 0 as the window's own count. `limit_sends_overcounted`: the entity's count beyond them
 *   (a send the window counts whose fate was unknown, and that never reached Prelude: the safe side);
 *   `limit_sends_overcounted_without_a_crash`: those of flows where no kill fell during the send
 *   (a send that sent nothing gives its reservation back, so only a crash leaves one counted);
 *   `limit_sends_unread`: flows whose entity could not be read;
 * - `messages_sent_twice`: Notify messages the sandbox sent to a flow's number beyond the first (with
 *   `VERIFY_SUCCESS_TEMPLATE_ID`, the success message of its verified window), summed, crash or not:
 *   a send whose answer was lost, or whose worker died, is not made again. `success_messages_missing`:
 *   verified flows the sandbox sent none (such a send may have never reached it; it is not made
 *   again either: at most once);
 * - `codes_after_verified`: codes the sandbox sent to a flow's number from requests it received
 *   after it had answered its right code `success` (a late call: a frozen worker's), crash or not;
 * - `codes_sent_again`, `checks_spent_again`: of the correct flows, codes the sandbox sent beyond
 *   those asked for (the send, a resend answered `retry`, the window's fallbacks) and checks it
 *   spent beyond the flow's two: a call made again after an attempt of it reached Prelude, summed.
 *   `_without_a_crash`: those of flows no kill cut while the step ran, which only a lost answer
 *   can make, so they must be 0 when CHAOS_DROP_RATE is (a deploy is no crash);
 * - `recovery_ms_p50`/`_p99`: over every step of a flow that an outage hit, from the moment it hit
 *   to the step's answer. A step is hit by a failed request (from its send), or by a kill while its
 *   flow ran: the step in flight or the flow's next one, from the later of the kill and the step's
 *   start (a killed worker also delays a window's next step after the new worker is up, until its
 *   tasks move on from the dead one);
 * - `worker_kills`, `worker_freezes`, `worker_deploys` (`worker_deploys_killed`: those whose old
 *   worker had to be killed), `devserver_kills`, `service_kills`, `duration_s`.
 * Flows that are not correct, or lost checks or sent codes the window did not count (even after a
 * crash), are printed on stderr with their window, the sandbox's calls and their requests; the run's
 * directory is then kept, with every process's logs, the SQLite file and report.json, which adds each
 * window's history (`temporal workflow show --detailed`, decoded through the service's codec
 * endpoint). CHAOS_KEEP=1 keeps it always.
 *
 * Everything it started is stopped by process group at the end, on an error and on Ctrl-C.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { percentiles } from '../../bench/measure';
import { configVariables, loadSection, verifyPolicySettings } from '../../temporal.config';
import { envSection, fraction, optionalWholeNumber, setting, wholeNumber } from '../../src/env';
import { windowId as windowIdOf } from '../../src/client';
import { freeListenPorts } from '../../src/free-port';
import type { CallRecord } from '../../src/sandbox/calls';
import {
  devServerAnswers,
  devServerFileFlags,
  devServerFlags,
  packageRoot,
  portIsFree,
  temporalCliPath,
} from '../../src/devserver';
import {
  runFlow,
  sendsCounted,
  type FlowContext,
  type FlowResult,
  type StepName,
  type StepRecord,
  type WindowAnswer,
} from './flow';
import {
  Part,
  untilPrinted,
  type FrozenProcess,
  type PartSpec,
  type Replacement,
} from '../../tools/processes';
import { targetSendsReader, type TargetSendsReader } from './target-sends';

const run = promisify(execFile);

/** What a chaos run does; see the module comment for the environment variables behind each. */
export interface ChaosOptions {
  flows: number;
  concurrency: number;
  killEveryMs: number;
  /** The flows are spread over at least this many kill intervals (0: all start at once). */
  minWorkerKills: number;
  /** No more worker kills after this many (the last flows then run without chaos). */
  maxWorkerKills: number;
  restartPauseMs: number;
  /**
   * 0: worker outages are kills. Otherwise each is a freeze (`SIGSTOP`) of this long: a new worker
   * takes over after the restart pause, and the frozen one then resumes, carries on for
   * {@link zombieLingerMs}, and is killed.
   */
  freezeMs: number;
  /**
   * Worker outages are rolling deploys instead (with `freezeMs` 0): a new worker is started and
   * ready, then the old one gets `SIGTERM` and finishes its work in flight, as an orchestrator
   * replaces a worker. A deploy is not a crash: the counts that must be 0 without one must be 0
   * through it, unless the old worker did not exit within {@link deployGraceMs} and was killed.
   */
  deploy: boolean;
  killDevServer: boolean;
  killService: boolean;
  stuckAfterMs: number;
  /** From a flow's start until its right code is sent. */
  openBudgetMs: number;
  /** The whole run's flows must be done by then. */
  deadlineMs: number;
  /** Share of Verify creates and checks the sandbox carries out and then drops the answer of. */
  dropAnswerRate: number;
  /** Share of Verify checks the sandbox cuts before carrying them out. */
  cutCheckRate: number;
  /** Share of Verify creates the sandbox cuts before carrying them out. */
  cutCreateRate: number;
  /** Each flow asks for its code again once it has come (see ./chaos/flow.ts). */
  resend: boolean;
  /** Variables for every part on top of the run's own (VERIFY_*, PRELUDE_TIMEOUT_MS, SANDBOX_* knobs). */
  env: Record<string, string>;
  /** Write the workflow bundle first (`dist/` may hold workflows newer than the bundle). */
  bundle: boolean;
  /** Keep the run's directory (logs, SQLite, report) even when every flow is correct. */
  keepRunDir: boolean;
  /** Progress lines. */
  log: (line: string) => void;
  /** Ctrl-C. */
  signal?: AbortSignal;
}

/** The one JSON line a run prints. */
export interface ChaosSummary {
  flows: number;
  correct: number;
  checks_used_up: number;
  wrong_outcome: number;
  stuck: number;
  lost_checks: number;
  overcounted_checks: number;
  overcounted_checks_without_a_crash: number;
  duplicate_sends: number;
  duplicate_sends_without_a_crash: number;
  overcounted_sends: number;
  overcounted_sends_without_a_crash: number;
  codes_listed_twice: number;
  codes_listed_twice_without_a_crash: number;
  limit_sends_missed: number;
  limit_sends_missed_without_a_crash: number;
  limit_sends_overcounted: number;
  limit_sends_overcounted_without_a_crash: number;
  /** Flows whose target's limits entity could not be read (their counts above are then 0). */
  limit_sends_unread: number;
  /** Notify messages the sandbox sent to a flow's number beyond the first, summed (see the module comment). */
  messages_sent_twice: number;
  /**
   * Codes the sandbox sent to a flow's number after it had answered its right code `success`: a
   * create that came after the user was verified, which only a late call can make (crash or not).
   */
  codes_after_verified: number;
  /**
   * Codes the sandbox sent, and checks it spent, beyond what correct flows asked for: calls made
   * again after an attempt that reached Prelude (see `Accounting.codesSentAgain`), and those of
   * flows no crash cut, which only lost answers (`dropAnswerRate`) can make.
   */
  codes_sent_again: number;
  codes_sent_again_without_a_crash: number;
  checks_spent_again: number;
  checks_spent_again_without_a_crash: number;
  /** Verified flows the sandbox sent no success message, with `VERIFY_SUCCESS_TEMPLATE_ID` set. */
  success_messages_missing: number;
  recovery_ms_p50: number | null;
  recovery_ms_p99: number | null;
  worker_kills: number;
  worker_freezes: number;
  /** Rolling deploys of the worker (`deploy`), and how many of the old workers had to be killed. */
  worker_deploys: number;
  worker_deploys_killed: number;
  devserver_kills: number;
  service_kills: number;
  duration_s: number;
}

/** A flow that did not come out correct (or lost checks or sent twice), with what shows why. */
export interface FlowEvidence {
  flow: FlowResult;
  windowId: string;
  /** The window at the end of the run. */
  window?: WindowAnswer | { error: string };
  /** The sandbox's Verify calls for the flow's number, newest first. */
  sandboxCalls: CallRecord[];
  /** The sends the target's limits entity counts, when it could be read. */
  limitSends?: number;
  /** `temporal workflow show --detailed`, decoded. */
  history?: string;
}

/** A run's summary and the evidence behind it. */
export interface ChaosReport {
  summary: ChaosSummary;
  /** Flows not correct, or with lost checks or duplicate sends. */
  evidence: FlowEvidence[];
  /** Other oddities: unexpected exits, first sends answered `retry`, ports still taken. */
  notes: string[];
  /** The run's directory, when kept. */
  runDir?: string;
}

/** Defaults of {@link ChaosOptions}, as `npm run chaos` runs. */
export const defaultChaosOptions: ChaosOptions = {
  flows: 150,
  concurrency: 10,
  killEveryMs: 4_000,
  minWorkerKills: 30,
  maxWorkerKills: Infinity,
  restartPauseMs: 500,
  freezeMs: 0,
  deploy: false,
  killDevServer: true,
  killService: true,
  stuckAfterMs: 60_000,
  openBudgetMs: 120_000,
  deadlineMs: 600_000,
  dropAnswerRate: 0,
  cutCheckRate: 0,
  cutCreateRate: 0,
  resend: false,
  env: {},
  bundle: true,
  keepRunDir: false,
  log: (line) => process.stderr.write(`${line}\n`),
};

/** The sandbox's faults unless the environment says otherwise. */
const sandboxFaults = {
  SANDBOX_ERROR_RATE: '0.1',
  SANDBOX_RATE_LIMIT_RATE: '0.05',
  SANDBOX_LATENCY_MS: '20',
};

/** An outage a kill caused: from the kill until the restarted process was ready. */
interface Outage {
  part: 'worker' | 'devserver' | 'service';
  start: number;
  end?: number;
  /** A freeze's: when the frozen worker resumed its work, late, and when it was killed. */
  resumed?: number;
  zombieKilled?: number;
  /** A deploy's: when the old worker got `SIGTERM`, when it was gone, and when it was killed if it was. */
  deploy?: Omit<Replacement, 'exitCode'>;
}

/**
 * How long a deployed worker's old process may take to finish its work in flight and exit before it
 * is killed: what orchestrators give by default (Kubernetes' `terminationGracePeriodSeconds`).
 */
export const deployGraceMs = 30_000;

/** How long a frozen worker carries on after it resumes, before it is killed. */
export const zombieLingerMs = 3_000;

/** Runs the chaos; resolves with its summary once everything it started has stopped. */
export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const options = { ...defaultChaosOptions, ...partial };
  const { log } = options;
  const root = packageRoot(__dirname);
  const cli = join(root, 'dist', 'src', 'cli.js');
  const runDir = mkdtempSync(join(tmpdir(), 'prelude-chaos-'));
  const logDir = join(runDir, 'logs');
  mkdirSync(logDir);
  const notes: string[] = [];
  const note = (line: string) => {
    notes.push(line);
    log(line);
  };

  // The run stops on the caller's signal or at its deadline; flows then count as stuck.
  const abort = new AbortController();
  const onCallerAbort = () => abort.abort(new Error('interrupted'));
  options.signal?.addEventListener('abort', onCallerAbort);
  const signal = abort.signal;
  // Every flow in flight listens to it (a wait, a request): more than Node's default of 10 is no leak.
  setMaxListeners(options.concurrency * 2 + 10, signal);
  // Starts and restarts stop only for Ctrl-C: at the deadline a restart under way completes, so the
  // accounting reads a whole stack.
  const startSignal = options.signal ?? AbortSignal.any([]);

  const ports = await freeListenPorts(6);
  const [temporalPort, httpPort, metricsPort, sandboxPort, servicePort] = ports as [
    number,
    number,
    number,
    number,
    number,
  ];
  const temporalAddress = `127.0.0.1:${temporalPort}`;
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const serviceUrl = `http://127.0.0.1:${servicePort}`;
  const idKey = randomBytes(24).toString('base64url');
  const apiToken = randomBytes(24).toString('base64url');
  const codecToken = randomBytes(24).toString('base64url');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? runDir,
    TEMPORAL_ADDRESS: temporalAddress,
    VERIFY_ID_KEY: idKey,
    PAYLOAD_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    CODEC_API_TOKEN: codecToken,
    SERVICE_API_TOKEN: apiToken,
    HOST: '127.0.0.1',
    PORT: String(servicePort),
    PRELUDE_BASE_URL: sandboxUrl,
    PRELUDE_CALLBACK_URL: `${serviceUrl}/webhooks/prelude`,
    SANDBOX_HOST: '127.0.0.1',
    SANDBOX_PORT: String(sandboxPort),
    SANDBOX_MIN_RETRY_DELAY_SECONDS: '0',
    // The connector is told so, as Prelude's dashboard value: a send whose every answer was lost
    // counts each attempt, each of which sent a code.
    PRELUDE_RESEND_DELAY_SECONDS: '0',
    VERIFY_RESEND_COOLDOWN_SECONDS: '0',
    // The run sends to one country far faster than a real app's users would (each flow a fresh
    // number, a send retried under a new key after Prelude failed it): with the default burst (100
    // a minute, 25 per shard) a shard that drew more than its share of flows refused some. The send
    // guards stay on, with a high-volume app's budget: this run is about crashes, not pumping.
    GUARD_COUNTRY_SENDS: '1000000',
    GUARD_COUNTRY_BURST: '100000',
    ...sandboxFaults,
    ...options.env,
  };

  const cliPart = (name: string, command: string, readyLine: string): PartSpec => ({
    name,
    command: process.execPath,
    args: [cli, command],
    env,
    cwd: runDir,
    logDir,
    ready: (process, readySignal) => untilPrinted(process, readyLine, readySignal),
  });
  const parts = {
    devserver: new Part(
      {
        name: 'devserver',
        command: await temporalCliPath(),
        // The same file, ports and flags on every start: a restart finds every window it had.
        args: [
          ...['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(temporalPort), '--headless'],
          ...['--http-port', String(httpPort), '--metrics-port', String(metricsPort), '--log-level', 'error'],
          // Its file as `npm run temporal` keeps it: the kill below shows the write-ahead log loses nothing.
          ...devServerFileFlags(join(runDir, 'temporal.sqlite')),
          ...devServerFlags(),
        ],
        env: { PATH: env.PATH!, HOME: env.HOME! },
        cwd: runDir,
        logDir,
        ready: (_process, readySignal) => untilTemporalAnswers(temporalAddress, readySignal),
      },
      log,
    ),
    sandbox: new Part(cliPart('sandbox', 'sandbox', 'Prelude sandbox:'), log),
    worker: new Part(cliPart('worker', 'worker', 'worker polling'), log),
    service: new Part(cliPart('service', 'server', 'HTTP service:'), log),
  };
  const startOrder = [parts.devserver, parts.sandbox, parts.worker, parts.service];

  const outages: Outage[] = [];
  const flows: FlowResult[] = [];
  let kept = options.keepRunDir;
  const startedAt = Date.now();
  let summary: ChaosSummary | undefined;
  let evidence: FlowEvidence[] | undefined;
  try {
    if (options.bundle) await run(process.execPath, [cli, 'bundle'], { cwd: root });
    for (const part of startOrder) await part.start(startSignal);
    await setFaultRates(sandboxUrl, options);
    log(`stack up in ${Date.now() - startedAt} ms (run directory ${runDir})`);

    const deadline = setTimeout(
      () => abort.abort(new Error(`the run's deadline (${options.deadlineMs} ms) passed`)),
      options.deadlineMs,
    ).unref();
    const runStart = Date.now();
    // Ticks of the kill loop the flows are spread over: the worker kills plus the other two.
    const ticks = options.minWorkerKills + Number(options.killDevServer) + Number(options.killService) + 1;
    const spacingMs = options.minWorkerKills > 0 ? (ticks * options.killEveryMs) / options.flows : 0;
    const ctx: FlowContext = {
      serviceUrl,
      sandboxUrl,
      apiToken,
      signal,
      openBudgetMs: options.openBudgetMs,
      stuckAfterMs: options.stuckAfterMs,
      wrongCode: 'ZZZZZZ',
      // A resend refused as too many must meet the window's sends all used, as the parts configure it.
      ...(options.resend
        ? { resend: loadSection(envSection({ maxSends: verifyPolicySettings.maxSends }), env) }
        : {}),
    };
    const phones = uniquePhoneNumbers(options.flows);
    let claimed = 0;
    let started = 0;
    let finished = 0;
    const flowsDone = (async () => {
      await Promise.all(
        Array.from({ length: Math.min(options.concurrency, options.flows) }, async () => {
          while (claimed < options.flows && !signal.aborted) {
            const index = claimed++;
            await sleep(Math.max(0, runStart + index * spacingMs - Date.now()), undefined, { signal }).catch(
              () => undefined,
            );
            started += 1;
            const flow = await runFlow(index, phones[index]!, ctx);
            flows.push(flow);
            finished += 1;
            if (flow.verdict !== 'correct') log(`flow ${index}: ${flow.verdict}: ${flow.reason}`);
            if (finished % 25 === 0) log(`${finished}/${options.flows} flows done`);
          }
        }),
      );
    })();

    const killing = killLoop({
      parts,
      options,
      outages,
      signal,
      startSignal,
      flowsDone,
      startedShare: () => started / options.flows,
      log,
    });
    try {
      await Promise.all([flowsDone, killing.catch((error: unknown) => abort.abort(error))]);
      await killing;
    } finally {
      clearTimeout(deadline);
    }
    for (let index = claimed; index < options.flows; index += 1) {
      flows.push(notStarted(index, phones[index]!));
    }
    flows.sort((a, b) => a.index - b.index);
    const endedAt = Date.now();

    // The accounting reads every window and the sandbox's call log, with the stack still up.
    log('accounting…');
    const targetSends = await targetSendsReader(temporalAddress, env.PAYLOAD_CODEC_KEYS!);
    const accounting = await account(flows, { serviceUrl, sandboxUrl, apiToken, idKey, targetSends }).finally(
      () => targetSends.close(),
    );
    for (const flow of flows) {
      for (const line of flow.notes) note(`flow ${flow.index}: ${line}`);
    }
    const recoveries = flows.flatMap((flow) => recoverySamples(flow, outages));
    // A frozen worker cuts what it held when it stops, and acts late when it resumes. A deploy is
    // no crash, unless its old worker outstayed the grace time and was killed.
    const crashes = outages
      .filter((outage) => outage.part !== 'service')
      .flatMap((outage) => {
        if (outage.deploy) return outage.deploy.killedAt ? [outage.deploy.killedAt] : [];
        return outage.resumed ? [outage.start, outage.resumed] : [outage.start];
      });
    const samples = recoveries.map((r) => r.ms);
    const { p50, p99 } = percentiles(samples);
    /**
     * A count summed over the flows; with `steps`, over those no crash cut while one of them ran
     * (or, for the send steps, while the window made a send of its own).
     */
    const total = (count: (a: (typeof accounting)[number]) => number, steps?: readonly StepName[]) =>
      accounting
        .filter((a) => steps === undefined || !cutByCrash(a.flow, steps, crashes, ownSendsIf(a, steps)))
        .reduce((sum, a) => sum + count(a), 0);
    const messagesMissing = options.env.VERIFY_SUCCESS_TEMPLATE_ID
      ? accounting.filter((a) => a.flow.verdict === 'correct' && a.messagesSent === 0)
      : [];
    for (const { flow, evidence: item } of messagesMissing) {
      note(`flow ${flow.index}: verified, and the sandbox sent no success message (${item.windowId})`);
    }
    summary = {
      flows: options.flows,
      correct: flows.filter((f) => f.verdict === 'correct').length,
      checks_used_up: flows.filter((f) => f.verdict === 'checks_used_up').length,
      wrong_outcome: flows.filter((f) => f.verdict === 'wrong_outcome').length,
      stuck: flows.filter((f) => f.verdict === 'stuck').length,
      lost_checks: total((a) => a.lostChecks),
      overcounted_checks: total((a) => a.overcountedChecks),
      overcounted_checks_without_a_crash: total((a) => a.overcountedChecks, checkSteps),
      duplicate_sends: total((a) => a.duplicateSends),
      duplicate_sends_without_a_crash: total((a) => a.duplicateSends, sendSteps),
      overcounted_sends: total((a) => a.overcountedSends),
      overcounted_sends_without_a_crash: total((a) => a.overcountedSends, sendSteps),
      codes_listed_twice: total((a) => a.codesListedTwice),
      codes_listed_twice_without_a_crash: total((a) => a.codesListedTwice, sendSteps),
      limit_sends_missed: total((a) => a.limitSendsMissed),
      limit_sends_missed_without_a_crash: total((a) => a.limitSendsMissed, sendSteps),
      limit_sends_overcounted: total((a) => a.limitSendsOvercounted),
      limit_sends_overcounted_without_a_crash: total((a) => a.limitSendsOvercounted, sendSteps),
      limit_sends_unread: accounting.filter((a) => a.evidence.limitSends === undefined).length,
      messages_sent_twice: total((a) => Math.max(0, a.messagesSent - 1)),
      codes_after_verified: total((a) => a.codesAfterVerified),
      codes_sent_again: total((a) => a.codesSentAgain),
      codes_sent_again_without_a_crash: total((a) => a.codesSentAgain, sendSteps),
      checks_spent_again: total((a) => a.checksSpentAgain),
      checks_spent_again_without_a_crash: total((a) => a.checksSpentAgain, checkSteps),
      success_messages_missing: messagesMissing.length,
      recovery_ms_p50: samples.length ? Math.round(p50) : null,
      recovery_ms_p99: samples.length ? Math.round(p99) : null,
      worker_kills: parts.worker.stats.kills,
      worker_freezes: parts.worker.stats.freezes,
      worker_deploys: parts.worker.stats.replacements,
      worker_deploys_killed: outages.filter((outage) => outage.deploy?.killedAt).length,
      devserver_kills: parts.devserver.stats.kills,
      service_kills: parts.service.stats.kills,
      duration_s: Math.round((endedAt - runStart) / 100) / 10,
    };
    if (kept) {
      // Where the time went: the slowest recoveries first, with the step and what hit it.
      const slowestFirst = [...recoveries].sort((a, b) => b.ms - a.ms);
      const slowFlows = new Set(slowestFirst.slice(0, 10).map((r) => r.flow));
      const requestsOfSlowFlows = flows
        .filter((f) => slowFlows.has(f.index))
        .map((f) => ({ flow: f.index, windowId: f.windowId, requests: f.requests }));
      writeFileSync(
        join(runDir, 'recovery.json'),
        JSON.stringify({ outages, recoveries: slowestFirst, requestsOfSlowFlows }, null, 2),
      );
    }
    evidence = accounting
      .filter(
        (a) =>
          !rightOutcome(a.flow) ||
          a.lostChecks > 0 ||
          // A code the window did not count is shown even when a crash explains it: they are rare.
          a.duplicateSends > 0 ||
          a.messagesSent > 1 ||
          a.codesAfterVerified > 0 ||
          a.codesListedTwice > 0 ||
          a.limitSendsMissed > 0 ||
          (a.overcountedSends > 0 && !cutByCrash(a.flow, sendSteps, crashes, a.ownSends)) ||
          (a.limitSendsOvercounted > 0 && !cutByCrash(a.flow, sendSteps, crashes, a.ownSends)) ||
          (a.overcountedChecks > 0 && !cutByCrash(a.flow, checkSteps, crashes)),
      )
      .map((a) => a.evidence);
    if (!options.signal?.aborted) {
      for (const item of evidence.slice(0, 20)) {
        item.history = await workflowHistory(item.windowId, temporalAddress, serviceUrl, codecToken);
      }
    }
    for (const part of Object.values(parts)) {
      if (part.stats.unexpectedExits > 0) {
        note(`${part.spec.name} exited ${part.stats.unexpectedExits} time(s) without being killed`);
      }
    }
    if (evidence.length > 0) {
      kept = true;
      writeFileSync(
        join(runDir, 'report.json'),
        JSON.stringify({ summary, evidence, notes, outages }, null, 2),
      );
      // Histories are long: they go to the report file only. An interrupted run's flows say little.
      if (!options.signal?.aborted) {
        for (const item of evidence) log(describeEvidence({ ...item, history: undefined }));
      }
      log(`evidence in ${join(runDir, 'report.json')}`);
    }
  } catch (error) {
    kept = true;
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    for (const part of [...startOrder].reverse()) {
      await part
        .stop()
        .catch((error: unknown) => note(`stopping ${part.spec.name}: ${(error as Error).message}`));
    }
    for (const port of ports) {
      if (!(await portIsFree('127.0.0.1', port))) note(`127.0.0.1:${port} is still taken after the run`);
    }
    if (kept) log(`run directory kept: ${runDir}`);
    else rmSync(runDir, { recursive: true, force: true });
  }
  return { summary: summary!, evidence: evidence!, notes, runDir: kept ? runDir : undefined };
}

/** What the kill loop works with: the run's parts, options and signals, and where it notes outages. */
interface KillLoopRun {
  parts: Record<'worker' | 'devserver' | 'service', Part>;
  options: ChaosOptions;
  outages: Outage[];
  signal: AbortSignal;
  startSignal: AbortSignal;
  flowsDone: Promise<void>;
  startedShare: () => number;
  log: (line: string) => void;
}

/**
 * Kills a part every `killEveryMs` while flows run: the worker, but once the dev server (when a
 * third of the flows have started) and once the service (at two thirds). Each is restarted after
 * a pause; the next kill waits until the part is back.
 */
async function killLoop(loop: KillLoopRun): Promise<void> {
  // Frozen workers resume and are killed on their own schedule; the run waits for them, so that the
  // accounting sees every late call they made.
  const zombies: Promise<void>[] = [];
  try {
    await killOrFreeze(loop, zombies);
  } finally {
    await Promise.all(zombies);
  }
}

async function killOrFreeze(loop: KillLoopRun, zombies: Promise<void>[]): Promise<void> {
  const { parts, options, outages, signal, startSignal, flowsDone, startedShare, log } = loop;
  let done = false;
  void flowsDone.then(() => (done = true));
  let devServerDue = options.killDevServer;
  let serviceDue = options.killService;
  let nextAt = Date.now() + options.killEveryMs;
  while (!done && !signal.aborted) {
    await Promise.race([sleep(Math.max(0, nextAt - Date.now())), flowsDone]);
    if (done || signal.aborted) return;
    let which: Outage['part'] | undefined =
      parts.worker.stats.kills + parts.worker.stats.freezes + parts.worker.stats.replacements <
      options.maxWorkerKills
        ? 'worker'
        : undefined;
    if (devServerDue && startedShare() >= 1 / 3) {
      which = 'devserver';
      devServerDue = false;
    } else if (serviceDue && startedShare() >= 2 / 3) {
      which = 'service';
      serviceDue = false;
    }
    if (!which) {
      if (!devServerDue && !serviceDue) return;
      nextAt = Date.now() + options.killEveryMs;
      continue;
    }
    const outage: Outage = { part: which, start: Date.now() };
    outages.push(outage);
    if (which === 'worker' && options.freezeMs > 0) {
      const frozen = await parts.worker.freeze();
      zombies.push(resumeThenKill(frozen, outage, options.freezeMs, log));
      await sleep(options.restartPauseMs);
      await parts.worker.start(startSignal);
      outage.end = Date.now();
      log(`froze the worker (SIGSTOP), a new one up after ${outage.end - outage.start} ms`);
    } else if (which === 'worker' && options.deploy) {
      const { exitCode, ...deploy } = await parts.worker.replace(startSignal, deployGraceMs);
      log(
        `deployed a new worker: up after ${deploy.terminatedAt - outage.start} ms, the old one ` +
          (deploy.killedAt
            ? `killed after ${deployGraceMs} ms`
            : `gone ${deploy.exitedAt - deploy.terminatedAt} ms after SIGTERM (exit ${String(exitCode)})`),
      );
      // The old worker's part in it: from SIGTERM until it was gone.
      outage.start = deploy.terminatedAt;
      outage.end = deploy.exitedAt;
      outage.deploy = deploy;
    } else {
      await parts[which].kill();
      await sleep(options.restartPauseMs);
      await parts[which].start(startSignal);
      outage.end = Date.now();
      log(`killed the ${which} (SIGKILL), back after ${outage.end - outage.start} ms`);
    }
    nextAt = Math.max(outage.start + options.killEveryMs, outage.end + 500);
  }
}

/**
 * Resumes a frozen worker `freezeMs` after it was frozen, lets it carry on its work for
 * {@link zombieLingerMs}, and kills it. Never rejects: the run goes on whatever the process does.
 */
async function resumeThenKill(
  frozen: FrozenProcess,
  outage: Outage,
  freezeMs: number,
  log: (line: string) => void,
): Promise<void> {
  try {
    await sleep(Math.max(0, outage.start + freezeMs - Date.now()));
    frozen.resume();
    outage.resumed = Date.now();
    await sleep(zombieLingerMs);
    await frozen.kill();
    outage.zombieKilled = Date.now();
    log(`the worker frozen for ${outage.resumed - outage.start} ms ran ${zombieLingerMs} ms more, killed`);
  } catch (error) {
    log(`the frozen worker ${frozen.pid}: ${(error as Error).message}`);
  }
}

/** Resolves once the dev server answers and has its namespace. */
async function untilTemporalAnswers(address: string, signal: AbortSignal): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    if (await devServerAnswers(address)) return;
    await sleep(200);
  }
}

/**
 * Has the sandbox drop the answers of a share of the Verify calls it carries out, and cut a share of
 * the checks before it does (runtime knobs).
 */
async function setFaultRates(
  sandboxUrl: string,
  {
    dropAnswerRate,
    cutCheckRate,
    cutCreateRate,
  }: Pick<ChaosOptions, 'dropAnswerRate' | 'cutCheckRate' | 'cutCreateRate'>,
): Promise<void> {
  if (dropAnswerRate === 0 && cutCheckRate === 0 && cutCreateRate === 0) return;
  const response = await fetch(`${sandboxUrl}/sandbox/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dropAnswerRate, cutCheckRate, cutCreateRate }),
  });
  if (!response.ok) throw new Error(`the sandbox refused the fault rates: ${await response.text()}`);
}

/** A flow's lost checks and duplicate sends (see the module comment), with what shows why. */
export interface Accounting {
  flow: FlowResult;
  lostChecks: number;
  overcountedChecks: number;
  duplicateSends: number;
  /** The window's sends beyond the codes the sandbox sent (see the module comment). */
  overcountedSends: number;
  /** The window's `auto_retry` attempts beyond the codes it did not count (see the module comment). */
  codesListedTwice: number;
  /**
   * Codes the sandbox sent to the flow's number beyond the sends its target's limits entity counts
   * (what the per-target limit refuses on), and the entity's count beyond them; 0 when unread.
   */
  limitSendsMissed: number;
  limitSendsOvercounted: number;
  /** Notify messages the sandbox sent to the flow's number (the success message, when one is set). */
  messagesSent: number;
  /** Codes sent after the number was verified (see {@link codesAfterVerified}). */
  codesAfterVerified: number;
  /**
   * Of a correct flow: codes the sandbox sent beyond those asked for (the flow's send, its resend
   * answered `retry`, the window's fallbacks), and checks it spent beyond the flow's two (the
   * wrong code and the right one; the replay is answered from the window). A call made again after
   * an attempt of it that reached Prelude: only a lost answer or a crash can leave one.
   */
  codesSentAgain: number;
  checksSpentAgain: number;
  /** When the window's own sends (fallbacks) of the flow were under way (see {@link ownSendSpans}). */
  ownSends: Span[];
  evidence: FlowEvidence;
}

/**
 * Lost checks and duplicate sends of each flow: the sandbox's call log against the window. A flow
 * whose checks were used up stays so only if that log shows them spent (see the module comment).
 */
export async function account(
  flows: FlowResult[],
  where: {
    serviceUrl: string;
    sandboxUrl: string;
    apiToken: string;
    idKey: string;
    /** Reads the sends a window's target's limits entity counts (see target-sends.ts). */
    targetSends?: TargetSendsReader;
  },
): Promise<Accounting[]> {
  const results: Accounting[] = [];
  for (const flow of flows) {
    const windowId = flow.windowId ?? windowIdOf({ type: 'phone_number', value: flow.phone }, where.idKey);
    const closedVerified = flow.verdict === 'correct' && flow.window;
    const window = closedVerified ? flow.window! : await readWindow(where, windowId);
    const calls = await getJson<{ calls: CallRecord[] }>(
      `${where.sandboxUrl}/sandbox/calls?to=${encodeURIComponent(flow.phone)}`,
    ).then(
      (answer) => answer.calls,
      () => [] as CallRecord[],
    );
    const creates = calls.filter((c) => c.operation === 'verification.create' && c.status === 200).length;
    const checks = calls.filter(
      (c) =>
        c.operation === 'verification.check' &&
        c.status === 200 &&
        (c.answer.status === 'success' || c.answer.status === 'failure'),
    ).length;
    const known = 'status' in window ? window : undefined;
    if (flow.verdict === 'checks_used_up') {
      const unproven = checksNotSpent(known, calls);
      if (unproven) {
        flow.verdict = 'wrong_outcome';
        flow.reason = `${flow.reason}, but ${unproven}`;
      } else {
        flow.notes.push(`${flow.reason}, all of them spent at the sandbox (none a success)`);
      }
    }
    const limitSends = await where.targetSends?.read(windowId);
    const correct = flow.verdict === 'correct' && known !== undefined;
    const codesAsked =
      1 +
      ((flow.answers.resend as { status?: unknown } | undefined)?.status === 'retry' ? 1 : 0) +
      (known?.attempts.filter((attempt) => attempt.trigger === 'fallback').length ?? 0);
    results.push({
      flow,
      lostChecks: known ? Math.max(0, checks - known.checks_used) : 0,
      overcountedChecks: known ? Math.max(0, known.checks_used - checks) : 0,
      duplicateSends: known ? Math.max(0, creates - sendsCounted(known)) : 0,
      overcountedSends: known ? Math.max(0, sendsCounted(known) - creates) : 0,
      codesListedTwice: known ? codesListedTwice(known, creates) : 0,
      limitSendsMissed: limitSends === undefined ? 0 : Math.max(0, creates - limitSends),
      limitSendsOvercounted: limitSends === undefined ? 0 : Math.max(0, limitSends - creates),
      messagesSent: calls.filter((c) => c.operation === 'notify.send' && c.status === 200).length,
      codesAfterVerified: codesAfterVerified(calls),
      codesSentAgain: correct ? Math.max(0, creates - codesAsked) : 0,
      checksSpentAgain: correct ? Math.max(0, checks - checkSteps.length) : 0,
      ownSends: ownSendSpans(flow, calls),
      evidence: { flow, windowId, window, sandboxCalls: calls, limitSends },
    });
  }
  return results;
}

/**
 * The codes the sandbox sent (creates answered 200) from requests it received after it had answered
 * a check of the number `success`: nobody asked for them, as the user was verified.
 */
export function codesAfterVerified(calls: readonly CallRecord[]): number {
  const verifiedAt = Math.min(
    ...calls
      .filter(
        (c) => c.operation === 'verification.check' && c.status === 200 && c.answer.status === 'success',
      )
      .map((c) => Date.parse(c.at)),
  );
  return calls.filter(
    (c) => c.operation === 'verification.create' && c.status === 200 && Date.parse(c.receivedAt) > verifiedAt,
  ).length;
}

/**
 * The window's `auto_retry` attempts that are not codes it missed: the sandbox makes no automatic
 * retries, so each code sent beyond the window's count explains one, and the others are codes the
 * window counted, listed twice.
 */
function codesListedTwice(window: WindowAnswer, creates: number): number {
  const reportedOnly = window.attempts.length - sendsCounted(window);
  return Math.max(0, reportedOnly - Math.max(0, creates - sendsCounted(window)));
}

/** Whether a flow came out as it must: verified, or refused with its checks spent at Prelude. */
export function rightOutcome(flow: FlowResult): boolean {
  return flow.verdict === 'correct' || flow.verdict === 'checks_used_up';
}

/**
 * Why a window that reads its checks used up is not Prelude's truth, if it is not: the sandbox spent
 * fewer checks than it counts, or one of them verified.
 */
export function checksNotSpent(
  window: WindowAnswer | undefined,
  calls: readonly CallRecord[],
): string | undefined {
  if (!window) return 'the window could not be read';
  if (window.status !== 'max_checks' || window.checks_left !== 0) {
    return `the window reads ${window.status} with ${window.checks_left} checks left`;
  }
  const spent = calls.filter((c) => c.operation === 'verification.check' && c.status === 200);
  const verified = spent.filter((c) => c.answer.status === 'success').length;
  const wrong = spent.filter((c) => c.answer.status === 'failure').length;
  if (verified > 0) return `the sandbox verified ${verified} of its checks`;
  if (wrong !== window.checks_used) {
    return `the sandbox spent ${wrong} checks where the window counts ${window.checks_used}`;
  }
  return undefined;
}

async function readWindow(
  where: { serviceUrl: string; apiToken: string },
  windowId: string,
): Promise<WindowAnswer | { error: string }> {
  let last = '';
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      const response = await fetch(`${where.serviceUrl}/verifications/${encodeURIComponent(windowId)}`, {
        headers: { authorization: `Bearer ${where.apiToken}` },
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json()) as WindowAnswer & { code?: string };
      if (response.status === 200) return body;
      last = `${response.status} ${body.code}`;
      if (response.status < 500) break;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(500);
  }
  return { error: last };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return (await response.json()) as T;
}

/** The window's history, decoded through the service's codec endpoint. */
async function workflowHistory(
  windowId: string,
  address: string,
  serviceUrl: string,
  codecToken: string,
): Promise<string> {
  try {
    const { stdout } = await run(
      await temporalCliPath(),
      [
        ...['workflow', 'show', '--detailed', '-w', windowId, '--address', address],
        ...['--codec-endpoint', `${serviceUrl}/codec`, '--codec-auth', `Bearer ${codecToken}`],
      ],
      { timeout: 20_000, maxBuffer: 8 << 20 },
    );
    return stdout;
  } catch (error) {
    return `temporal workflow show failed: ${(error as Error).message}`;
  }
}

/** The steps of a flow that send a code, and those that check one. */
const sendSteps: readonly StepName[] = ['send', 'resend'];
const checkSteps: readonly StepName[] = ['wrong_check', 'right_check'];

/** The window's own sends, where the crashes that count are those of sends. */
const ownSendsIf = (accounting: Accounting, steps: readonly StepName[]): Span[] =>
  steps === sendSteps ? accounting.ownSends : [];

/** A stretch of time, in `Date.now()` milliseconds. */
export interface Span {
  start: number;
  end: number;
}

/**
 * Whether a worker or dev server kill (`crashes`: start times) fell while one of the flow's `steps`
 * was under way, or during one of `alsoDuring` (the window's own sends): a call it cut has an
 * unknown fate.
 */
export function cutByCrash(
  flow: FlowResult,
  steps: readonly StepName[],
  crashes: readonly number[],
  alsoDuring: readonly Span[] = [],
): boolean {
  const spans = [
    ...flow.steps
      .filter((step) => steps.includes(step.name))
      .map((step) => ({ start: step.start, end: step.end ?? Infinity })),
    ...alsoDuring,
  ];
  return spans.some((span) => crashes.some((at) => at >= span.start && at <= span.end));
}

/**
 * How long before a window's own send reached the sandbox a kill can have cut an earlier run of it
 * whose call never came: the workflow task's timeout (3 s) and a worker's restart (2–4 s).
 */
const ownSendLeadMs = 8_000;

/**
 * The window's own sends of a flow (fallbacks, `VERIFY_FALLBACK_CHANNELS`): the sandbox's creates
 * that came while none of the flow's send steps was under way, each from {@link ownSendLeadMs}
 * before it to a second after its answer (the workflow task that records it).
 */
export function ownSendSpans(flow: FlowResult, calls: readonly CallRecord[]): Span[] {
  const sends = flow.steps.filter((step) => sendSteps.includes(step.name));
  return calls
    .filter((call) => call.operation === 'verification.create')
    .map((call) => ({ received: Date.parse(call.receivedAt), answered: Date.parse(call.at) }))
    .filter(({ received }) => !sends.some((s) => received >= s.start && received <= (s.end ?? Infinity)))
    .map(({ received, answered }) => ({ start: received - ownSendLeadMs, end: answered + 1_000 }));
}

/** One step of a flow that an outage hit: what hit it, and how long after the hit it was answered. */
export interface RecoverySample {
  flow: number;
  step: StepName;
  cause: 'failed request' | Outage['part'];
  ms: number;
}

/**
 * Recovery samples of one flow (see the module comment): per step hit by an outage, the time from
 * the hit to the step's answer.
 */
export function recoverySamples(flow: FlowResult, outages: readonly Outage[]): RecoverySample[] {
  const answered = flow.steps.filter(
    (s): s is StepRecord & { end: number } => s.viaService && s.end !== undefined,
  );
  const hitAt = new Map<StepRecord, { at: number; cause: RecoverySample['cause'] }>();
  const hit = (step: StepRecord, at: number, cause: RecoverySample['cause']) => {
    if (at < (hitAt.get(step)?.at ?? Infinity)) hitAt.set(step, { at, cause });
  };
  for (const step of answered) if (step.failedAt.length > 0) hit(step, step.failedAt[0]!, 'failed request');
  for (const outage of outages) {
    const outageEnd = outage.end ?? Infinity;
    if (flow.startedAt >= outageEnd || flow.finishedAt <= outage.start) continue;
    const step = answered.find((s) => s.end > outage.start);
    if (!step) continue;
    // After a service or dev server restart a step that starts afresh is unaffected; after a worker
    // kill the window's tasks first time out on the dead worker.
    if (outage.part !== 'worker' && step.start >= outageEnd) continue;
    hit(step, Math.max(step.start, outage.start), outage.part);
  }
  return [...hitAt].map(([step, { at, cause }]) => ({
    flow: flow.index,
    step: step.name,
    cause,
    ms: step.end! - at,
  }));
}

function notStarted(index: number, phone: string): FlowResult {
  const now = Date.now();
  return {
    index,
    phone,
    verdict: 'stuck',
    reason: 'never started: the run ended first',
    notes: [],
    startedAt: now,
    finishedAt: now,
    steps: [],
    requests: [],
    answers: {},
  };
}

function describeEvidence({ flow, windowId, window, sandboxCalls, history }: FlowEvidence): string {
  const calls = sandboxCalls
    .map(
      (c) =>
        `${c.operation.replace('verification.', '')}:${c.status}:${c.answer.status ?? ''}${c.dropped ? ':dropped' : ''}`,
    )
    .reverse()
    .join(' ');
  const requests = flow.requests
    .map((r) => `${r.step}:${r.status ?? r.error}${r.answer ? `:${r.answer}` : ''}(${r.ms}ms)`)
    .join(' ');
  return [
    `--- flow ${flow.index} (${flow.verdict}${flow.reason ? `: ${flow.reason}` : ''}) window ${windowId}`,
    `  window:   ${JSON.stringify(window)}`,
    `  sandbox:  ${calls}`,
    `  requests: ${requests}`,
    ...(history ? [`  history:\n${history.replace(/^/gm, '    ')}`] : []),
  ].join('\n');
}

function uniquePhoneNumbers(count: number): string[] {
  const numbers = new Set<string>();
  while (numbers.size < count) numbers.add(`+3361${String(randomInt(0, 10_000_000)).padStart(7, '0')}`);
  return [...numbers];
}

/**
 * The configuration the parts take from this process's environment: policy, send guards, timeouts,
 * sandbox knobs (`GUARD_SHARDS=1` puts every send on one guard shard, which then continues as new
 * under the kills).
 */
function passedOnEnv(): Record<string, string> {
  const own = new Set(['VERIFY_ID_KEY', 'SANDBOX_PORT', 'SANDBOX_HOST']);
  const passed = (name: string) =>
    !own.has(name) &&
    (name.startsWith('VERIFY_') ||
      name.startsWith('SANDBOX_') ||
      name.startsWith('GUARD_') ||
      name.startsWith('WORKER_') ||
      name === 'PRELUDE_TIMEOUT_MS');
  return Object.fromEntries(
    configVariables()
      .filter((name) => passed(name) && process.env[name] !== undefined)
      .map((name) => [name, process.env[name]!]),
  );
}

/** The run's knobs, read like the configuration (`loadSection`); unset, the defaults above. */
export const chaosEnv = envSection({
  flows: setting('CHAOS_FLOWS', wholeNumber(1, 100_000), defaultChaosOptions.flows),
  concurrency: setting('CHAOS_CONCURRENCY', wholeNumber(1, 1_000), defaultChaosOptions.concurrency),
  killEveryMs: setting('CHAOS_KILL_EVERY_MS', wholeNumber(500, 3_600_000), defaultChaosOptions.killEveryMs),
  minWorkerKills: setting(
    'CHAOS_MIN_WORKER_KILLS',
    wholeNumber(0, 10_000),
    defaultChaosOptions.minWorkerKills,
  ),
  maxWorkerKills: setting('CHAOS_MAX_WORKER_KILLS', optionalWholeNumber(0, Number.MAX_SAFE_INTEGER)),
  restartPauseMs: setting(
    'CHAOS_RESTART_PAUSE_MS',
    wholeNumber(0, 3_600_000),
    defaultChaosOptions.restartPauseMs,
  ),
  freezeMs: setting('CHAOS_FREEZE_MS', wholeNumber(0, 3_600_000), defaultChaosOptions.freezeMs),
  deploy: setting('CHAOS_DEPLOY', wholeNumber(0, 1), 0),
  killDevServer: setting('CHAOS_KILL_DEVSERVER', wholeNumber(0, 1), 1),
  killService: setting('CHAOS_KILL_SERVICE', wholeNumber(0, 1), 1),
  stuckAfterMs: setting('CHAOS_STUCK_MS', wholeNumber(1_000, 3_600_000), defaultChaosOptions.stuckAfterMs),
  deadlineMs: setting('CHAOS_DEADLINE_MS', optionalWholeNumber(10_000, 86_400_000)),
  keep: setting('CHAOS_KEEP', wholeNumber(0, 1), 0),
  dropAnswerRate: setting('CHAOS_DROP_RATE', fraction, defaultChaosOptions.dropAnswerRate),
  cutCheckRate: setting('CHAOS_CUT_RATE', fraction, defaultChaosOptions.cutCheckRate),
  cutCreateRate: setting('CHAOS_CUT_CREATE_RATE', fraction, defaultChaosOptions.cutCreateRate),
  resend: setting('CHAOS_RESEND', wholeNumber(0, 1), 0),
});

async function main(): Promise<void> {
  const knobs = loadSection(chaosEnv);
  const { flows } = knobs;
  const interrupt = new AbortController();
  let interrupted = 0;
  const onSignal = (name: string) => {
    interrupted += 1;
    // A second Ctrl-C does not wait: the exit hook kills every process group still alive.
    if (interrupted > 1) process.exit(130);
    process.stderr.write(`${name}: stopping the run…\n`);
    interrupt.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const report = await runChaos({
    flows,
    concurrency: knobs.concurrency,
    killEveryMs: knobs.killEveryMs,
    minWorkerKills: knobs.minWorkerKills,
    maxWorkerKills: knobs.maxWorkerKills ?? Number.MAX_SAFE_INTEGER,
    restartPauseMs: knobs.restartPauseMs,
    freezeMs: knobs.freezeMs,
    deploy: knobs.deploy > 0,
    killDevServer: knobs.killDevServer > 0,
    killService: knobs.killService > 0,
    stuckAfterMs: knobs.stuckAfterMs,
    deadlineMs: knobs.deadlineMs ?? Math.max(120_000, flows * 4_000),
    dropAnswerRate: knobs.dropAnswerRate,
    cutCheckRate: knobs.cutCheckRate,
    cutCreateRate: knobs.cutCreateRate,
    resend: knobs.resend > 0,
    keepRunDir: knobs.keep > 0,
    env: passedOnEnv(),
    signal: interrupt.signal,
  });
  console.log(JSON.stringify(report.summary));
  const {
    flows: total,
    correct,
    checks_used_up: usedUp,
    lost_checks: lost,
    duplicate_sends_without_a_crash: duplicates,
    overcounted_sends_without_a_crash: sendsOvercounted,
    codes_listed_twice_without_a_crash: listedTwice,
    limit_sends_missed_without_a_crash: limitMissed,
    limit_sends_overcounted_without_a_crash: limitOvercounted,
    overcounted_checks_without_a_crash: overcounted,
    messages_sent_twice: messagesTwice,
    codes_after_verified: afterVerified,
    codes_sent_again_without_a_crash: codesAgain,
    checks_spent_again_without_a_crash: checksAgain,
  } = report.summary;
  // A lost answer has its call made again, crash or not; without lost answers only a crash may.
  const noCallAgain = knobs.dropAnswerRate > 0 || (codesAgain === 0 && checksAgain === 0);
  const exact =
    correct + usedUp === total &&
    lost === 0 &&
    duplicates === 0 &&
    sendsOvercounted === 0 &&
    listedTwice === 0 &&
    limitMissed === 0 &&
    limitOvercounted === 0 &&
    messagesTwice === 0 &&
    afterVerified === 0 &&
    overcounted === 0 &&
    noCallAgain;
  process.exitCode = exact && !interrupt.signal.aborted ? 0 : 1;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
