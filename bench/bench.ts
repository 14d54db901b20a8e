/**
 * `npm run bench`: what a user waits for through this connector, next to the anchors that bound it,
 * in one run on one dev server, one sandbox and one client, interleaved so that machine noise hits
 * every scenario alike. Scenarios (BENCH_SCENARIOS, a comma list, runs a subset):
 * - `project`: the verification window, send + check through `startVerification`/`checkCode`;
 * - `unguarded`: the same with the send guards off (`GUARD_MODE=off`): what the guards cost;
 * - `shard_admission`: the same with every phone send asking its guard shard
 *   (`GUARD_ADMISSION=shard`, no admission leases), to numbers of another country so that its
 *   shards are its own: what the leases save;
 * - `bare`: a bare workflow of the same shape with regular activities (what plain Temporal costs);
 * - `floor`: the same with local activities (the least Temporal can cost);
 * - `bound`: the least Temporal code that does what the project must: one update to a shared
 *   admission entity before anything is written (as the send guards do), the send on a local activity
 *   that starts a per-target record before the create (as a window's first send starts its target's
 *   limits entity), the check on a regular one (crash-correct, as the window's is). No implementation
 *   of the project's rules can beat it, so its ratio to bare bounds the project's;
 * - `unguarded_bound`: the bound without its admission, the bound of `unguarded`;
 * - `prelude`: the same Prelude calls made directly (no Temporal at all);
 * - `webhooks`: delivery reports per second through `POST /webhooks/prelude` (each 200 is a signal
 *   Temporal holds), against bare `signal` calls per second carrying the same reports to the same runs;
 * - `open`: BENCH_OPEN (default 2000) open windows on one worker process: its memory, events per window;
 * - `startup`: a worker started from the prebuilt workflow bundle until it polls.
 * The flows run one at a time and BENCH_CONCURRENCY (default 20) at a time, BENCH_WINDOWS (default
 * 200) of each, and 30 one at a time with the check BENCH_READ_MS (default 500, 0: none) after the
 * send, as a user reading the code. Prints JSON lines, then a table; compare ratios, not absolute times, across machines.
 * Uses TEMPORAL_ADDRESS when set (a server set up for the project: `npm run setup`), otherwise starts a
 * headless dev server.
 */
import { fork, type ChildProcess } from 'node:child_process';
import {
  constants,
  generateKeyPairSync,
  randomBytes,
  randomInt,
  randomUUID,
  sign,
  type KeyObject,
} from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { bareRecordIdOf, createBareActivities, startedRecordIds } from './bare-activities';
import {
  bareAdmission,
  bareAdmitUpdate,
  bareBoundWindow,
  bareCheckUpdate,
  bareLocalWindow,
  bareSendUpdate,
  bareStart,
  bareWindow,
} from './bare-workflows';
import { runBenchmark, type Cleanups } from './harness';
import { latestCode } from './inbox';
import {
  cpuBetween,
  percentiles,
  pool,
  readCpu,
  rotate,
  round1,
  since,
  split,
  type CpuReading,
} from './measure';
import type { SandboxProcessMessage } from './sandbox-process';
import type { WorkerProcessMessage } from './worker-process';
import { z } from 'zod';
import { loadConfig, loadSection } from '../temporal.config';
import { envSection, list, setting, wholeNumber } from '../src/env';
import { checkCode, startVerification, verificationClientOptions } from '../src/client';
import { dataConverterFor } from '../src/codec';
import { connectClient } from '../src/connection';
import { startDevServer } from '../src/devserver';
import { PreludeClient, type Target } from '../src/prelude';
import { startServer } from '../src/server';
import { isNotFound } from '../src/client/calls';
import { guardShardOf } from '../src/guards/check';
import { blockOf, regionOf, shardOf } from '../src/guards/ranges';
import { shardsOf } from '../src/guards/settings';
import { createVerificationWorker, writeWorkflowBundle } from '../src/worker';
import { customSearchAttributes } from '../workflows/search-attributes';
import {
  deliveryStatusSignal,
  targetLimitsIdOf,
  windowIdPrefix,
  type DeliveryStatusReport,
} from '../workflows/messages';

const allScenarios = [
  'project',
  'unguarded',
  'shard_admission',
  'bare',
  'floor',
  'bound',
  'unguarded_bound',
  'prelude',
  'webhooks',
  'open',
  'startup',
] as const;
type ScenarioName = (typeof allScenarios)[number];
type FlowName = Extract<
  ScenarioName,
  'project' | 'unguarded' | 'shard_admission' | 'bare' | 'floor' | 'bound' | 'unguarded_bound' | 'prelude'
>;

/** The benchmark's knobs, read like the configuration (`loadSection`). */
const benchEnv = envSection({
  windows: setting('BENCH_WINDOWS', wholeNumber(1, 100_000), 200),
  concurrency: setting('BENCH_CONCURRENCY', wholeNumber(1, 1_000), 20),
  openWindows: setting('BENCH_OPEN', wholeNumber(1, 100_000), 2000),
  scenarios: setting('BENCH_SCENARIOS', list(z.array(z.enum(allScenarios)))),
  readMs: setting('BENCH_READ_MS', wholeNumber(0, 60_000), 500),
});
const knobs = loadSection(benchEnv);
const { windows, concurrency, openWindows, readMs } = knobs;
const selected = new Set<ScenarioName>(knobs.scenarios.length > 0 ? knobs.scenarios : allScenarios);
// Concurrent flows run in a few rounds of at least five waves each: enough rounds to interleave the
// scenarios, chunks long enough that a round's ramp-up and tail do not dominate its throughput.
const rounds = Math.min(10, Math.max(1, Math.floor(windows / (concurrency * 5))));

/** One way to send a code and check it; the flow scenarios differ only in this. */
interface Flow {
  name: FlowName;
  /** Its targets, when not the run's French mobiles. */
  target?(): Target;
  /** Sends a code; resolves with the workflow that holds the window, if there is one. */
  send(target: Target): Promise<string | undefined>;
  /** Checks the right code; throws unless it is accepted. */
  check(target: Target, code: string, workflowId: string | undefined): Promise<void>;
  /** The executions a window has beside it, of its own (the limits entity through the helpers). */
  besides?(workflowId: string): string[];
  /** The shared entity whose update admitted a send to this target before its window, if any. */
  admittedBy?(target: Target): string;
}

/** What one scenario measured in one mode. */
interface FlowStats {
  send: number[];
  check: number[];
  total: number[];
  wallMs: number;
  /** A workflow this scenario ran, to count its history events. */
  sampleId?: string;
  /** The billed actions of its admissions per send, read from the shared entities' histories. */
  admissionActions?: number;
  /** The shared entities that admitted its sends. */
  admitters: Set<string>;
  /** Its last flows (their workflows and the client's clock), to read where their time went. */
  recent: TimedFlow[];
  /** CPU time each of its concurrent rounds took: this process (client, workers), the server, the sandbox. */
  cpu: CpuReading[];
}

const output: Record<string, unknown>[] = [];
function emit(line: Record<string, unknown>): void {
  output.push(line);
  console.log(JSON.stringify(line));
}

// Numbers from a random start, a block (1000 numbers) apart: unique in the run, so no flow ever meets
// an open window, and spread over ranges as real users are (the number-block guard sees no pumping).
let nextNumber = randomInt(0, 5_000_000);
const nextTarget = (prefix = '+3362'): Target => {
  nextNumber = (nextNumber + 1_009) % 10_000_000;
  return { type: 'phone_number', value: `${prefix}${String(nextNumber).padStart(7, '0')}` };
};

const mib = (bytes: number) => round1(bytes / 2 ** 20);

/** The bound scenario's admission entities (`<prefix><shard>`): one set per run. */
const admissionIdPrefix = `bench-admission-${randomUUID()}-`;

async function run(cleanups: Cleanups): Promise<void> {
  const devServer = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ uiPort: false });
  if (devServer) cleanups.push(() => devServer.stop());

  // Production's privacy defaults: HMAC'd workflow IDs and encrypted payloads, with throwaway keys.
  const codecKeys = `k1:${randomBytes(32).toString('base64')}`;
  const webhookKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: devServer?.address ?? process.env.TEMPORAL_ADDRESS,
    PRIVACY_MODE: 'encrypted',
    VERIFY_ID_KEY: randomBytes(24).toString('base64'),
    PAYLOAD_CODEC_KEYS: codecKeys,
    SANDBOX_PORT: '0',
    SANDBOX_MIN_RETRY_DELAY_SECONDS: '0',
    SANDBOX_NUMBER_RATE_LIMIT: '0',
    SANDBOX_WEBHOOK_PRIVATE_KEY: webhookKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    // The send guards stay on, with a high-volume app's country budget: their cost is measured, and
    // the run's thousands of sends to one country within minutes are not refused as a burst.
    GUARD_COUNTRY_SENDS: '10000000',
    GUARD_COUNTRY_BURST: '1000000',
  };
  const config = loadConfig(env);
  const { address, namespace } = config.temporal;
  const sandbox = await startSandboxProcess(env);
  cleanups.push(() => stopChild(sandbox.process));
  const prelude = new PreludeClient({ apiKey: 'bench', baseUrl: sandbox.url, timeoutMs: 10_000 });
  const dataConverter = dataConverterFor(config.privacy.keyRing);
  const client = await connectClient(config.temporal, dataConverter);
  cleanups.push(() => client.connection.close());
  if (!devServer) await expectProjectSetup(client, namespace);

  const bundleStarted = performance.now();
  const bundle = await writeWorkflowBundle(join(tmpdir(), `prelude-temporal-bench-${randomUUID()}.js`));
  const bundleMs = since(bundleStarted);
  cleanups.push(async () => rmSync(bundle, { force: true }));

  const workerConnection = await NativeConnection.connect({ address });
  cleanups.push(() => workerConnection.close());
  const runWorker = (worker: Worker) => {
    const running = worker.run();
    // A worker that fails is reported when it is awaited at cleanup, not as an unhandled rejection.
    running.catch(() => undefined);
    cleanups.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    });
  };

  const taskQueue = `bench-${randomUUID()}`;
  const createStarted = performance.now();
  const projectWorker = await createVerificationWorker({
    connection: workerConnection,
    namespace,
    taskQueue,
    client,
    prelude,
    dataConverter,
    workflowBundle: bundle,
  });
  const inProcessCreateMs = since(createStarted);
  runWorker(projectWorker);
  const options = { ...verificationClientOptions(config), taskQueue };
  const unguarded = { ...options, guards: { ...options.guards, mode: 'off' as const } };
  const shardAdmission = { ...options, guards: { ...options.guards, admission: 'shard' as const } };

  // The baselines get a worker and a task queue of their own, with the same converter and client.
  const bareQueue = `bench-bare-${randomUUID()}`;
  runWorker(
    await Worker.create({
      connection: workerConnection,
      namespace,
      taskQueue: bareQueue,
      workflowsPath: require.resolve('./bare-workflows'),
      activities: createBareActivities(prelude, client, bareQueue),
      dataConverter,
    }),
  );

  const expectSuccess = (name: string, status: string) => {
    if (status !== 'success') throw new Error(`${name}: the right code was answered ${status}`);
  };
  // The bound's admission entities: as many as the guard's shards, picked like them by the number's
  // block, with a budget no run reaches.
  const admissionShards = options.guards.shards;
  const admissionOf = (target: Target) => {
    const shards = shardsOf(options.guards, regionOf(target.value));
    return `${admissionIdPrefix}${shardOf(blockOf(target.value, options.guards.block.trailingDigits), shards)}`;
  };
  const admit = (target: Target) =>
    client.workflow.executeUpdateWithStart(bareAdmitUpdate, {
      args: [Number.MAX_SAFE_INTEGER],
      startWorkflowOperation: new WithStartWorkflowOperation(bareAdmission, {
        workflowId: admissionOf(target),
        taskQueue: bareQueue,
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    });
  /** A bare flow; `admitted`: its send passes an admission entity first, as the bound's does. */
  const bareFlow = (
    name: 'bare' | 'floor' | 'bound' | 'unguarded_bound',
    workflow: typeof bareWindow,
    { admitted = false } = {},
  ): Flow => ({
    name,
    ...(admitted ? { admittedBy: admissionOf } : {}),
    // The bound's window starts its target's record (bare-activities.ts), named after it.
    ...(workflow === bareBoundWindow ? { besides: (windowId: string) => [bareRecordIdOf(windowId)] } : {}),
    async send(target) {
      if (admitted) await admit(target);
      const workflowId = `bench-${name}-${randomUUID()}`;
      await client.workflow.executeUpdateWithStart(bareSendUpdate, {
        startWorkflowOperation: new WithStartWorkflowOperation(workflow, {
          workflowId,
          taskQueue: bareQueue,
          args: [target],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      });
      return workflowId;
    },
    async check(_target, code, workflowId) {
      const handle = client.workflow.getHandle(workflowId!);
      expectSuccess(name, await handle.executeUpdate(bareCheckUpdate, { args: [code] }));
    },
  });
  const projectFlow = (
    name: 'project' | 'unguarded' | 'shard_admission',
    flowOptions: typeof options,
    target?: () => Target,
  ): Flow => ({
    name,
    ...(target ? { target } : {}),
    send: async (target) => (await startVerification(client, { target }, flowOptions)).windowId,
    check: async (target, code) =>
      expectSuccess(name, (await checkCode(client, { target, code }, flowOptions)).status),
    besides: (windowId) => [targetLimitsIdOf(windowId)],
    ...(flowOptions.guards.mode === 'off'
      ? {}
      : { admittedBy: (target: Target) => guardShardOf(target.value, flowOptions).workflowId }),
  });
  const allFlows: Flow[] = [
    projectFlow('project', options),
    projectFlow('unguarded', unguarded),
    // UK mobiles: shards of their own, so that each scenario's shard updates are counted apart.
    projectFlow('shard_admission', shardAdmission, () => nextTarget('+4479')),
    bareFlow('bare', bareWindow),
    bareFlow('floor', bareLocalWindow),
    bareFlow('bound', bareBoundWindow, { admitted: true }),
    bareFlow('unguarded_bound', bareBoundWindow),
    {
      name: 'prelude',
      send: async (target) => {
        await prelude.verification.create({ target });
        return undefined;
      },
      check: async (target, code) =>
        expectSuccess('prelude', (await prelude.verification.check({ target, code })).status),
    },
  ];
  const flows = allFlows.filter((flow) => selected.has(flow.name));

  let child: WorkerProcess | undefined;
  if (selected.has('startup') || selected.has('open')) {
    // Started first, while the machine is quiet, as a worker process would start on a deploy.
    child = await startWorkerProcess({
      TEMPORAL_ADDRESS: address,
      NAMESPACE: namespace,
      TASK_QUEUE: `bench-open-${randomUUID()}`,
      CODEC_KEYS: codecKeys,
      PRELUDE_URL: sandbox.url,
      WORKFLOW_BUNDLE: bundle,
    });
    const { process: childProcess } = child;
    cleanups.push(() => stopChild(childProcess));
  }
  if (child && selected.has('startup')) {
    emit({
      scenario: 'startup',
      bundle_ms: round1(bundleMs),
      in_process_create_ms: round1(inProcessCreateMs),
      process_ready_ms: round1(child.readyMs),
      process_create_ms: round1(child.ready.createMs),
    });
  }

  if (flows.length > 0)
    await measureFlows(flows, (to) => latestCode(sandbox.url, to), client, devServer?.pid, sandbox.pid);

  if (selected.has('webhooks')) {
    const server = await startServer({
      client,
      verification: options,
      webhookPublicKey: sandbox.publicKeyPem,
      bodyLimitBytes: config.service.bodyLimitBytes,
      host: '127.0.0.1',
      port: 0,
    });
    cleanups.push(() => server.app.close());
    await measureWebhooks(`${server.url}/webhooks/prelude`, webhookKey, client, bareQueue);
  }

  // Last: thousands of open windows would weigh on every scenario after them.
  if (child && selected.has('open'))
    await measureOpen(child, client, { ...options, taskQueue: child.taskQueue });

  printTable();

  // Windows left open on a server we did not start would fire their deadlines with no worker.
  if (!devServer) await terminateOpenWindows(client, admissionShards);
}

/**
 * A server this bench did not start must have been set up for the project first: without its search
 * attributes every window's start is refused (INVALID_ARGUMENT) mid-run.
 */
async function expectProjectSetup(client: Client, namespace: string): Promise<void> {
  const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
  const missing = customSearchAttributes.filter((key) => !(key.name in (customAttributes ?? {})));
  if (missing.length > 0) {
    throw new Error(
      `namespace "${namespace}" at TEMPORAL_ADDRESS lacks the search attributes ` +
        `${missing.map((key) => key.name).join(', ')}: run \`npm run setup\` against it first`,
    );
  }
}

const openWindowIds: string[] = [];

async function measureOpen(
  child: WorkerProcess,
  client: Client,
  options: Parameters<typeof startVerification>[2],
): Promise<void> {
  // The baseline follows one window: the first one pays for the workflow sandbox itself.
  openWindowIds.push((await startVerification(client, { target: nextTarget() }, options)).windowId);
  const before = await workerMemory(child.process);
  const wallMs = await pool(openWindows, concurrency, async () => {
    openWindowIds.push((await startVerification(client, { target: nextTarget() }, options)).windowId);
  });
  const after = await workerMemory(child.process);
  const step = Math.max(1, Math.floor(openWindowIds.length / 5));
  const sample = openWindowIds.filter((_, i) => i % step === 0).slice(0, 5);
  emit({
    scenario: 'open',
    windows: openWindowIds.length,
    opened_per_s: round1((openWindows / wallMs) * 1000),
    worker_rss_mib_before: mib(before.rssBytes),
    worker_rss_mib: mib(after.rssBytes),
    // The main thread's heap only: workflows run in worker threads, whose heaps only RSS shows.
    worker_main_thread_heap_mib: mib(after.heapUsedBytes),
    max_cached_workflows: child.ready.maxCachedWorkflows,
    events_per_open_window: await historyLengths(client, sample),
  });
}

async function measureFlows(
  flows: Flow[],
  latestCode: (to: string) => Promise<string>,
  client: Client,
  serverPid: number | undefined,
  sandboxPid: number | undefined,
): Promise<void> {
  const stats = new Map<string, FlowStats>();
  const statsOf = (flow: Flow, mode: string) => {
    const key = `${flow.name}/${mode}`;
    if (!stats.has(key)) {
      stats.set(key, {
        send: [],
        check: [],
        total: [],
        wallMs: 0,
        recent: [],
        cpu: [],
        admitters: new Set(),
      });
    }
    return stats.get(key)!;
  };
  const runFlow = async (flow: Flow, into: FlowStats, reading = 0) => {
    const target = flow.target?.() ?? nextTarget();
    const sendAt = Date.now();
    const sendStarted = performance.now();
    const workflowId = await flow.send(target);
    const sendMs = since(sendStarted);
    const sentAt = Date.now();
    // Reading the code from the sandbox's inbox is the user's part: in neither figure.
    const code = await latestCode(target.value);
    if (reading > 0) await sleep(reading);
    const checkAt = Date.now();
    const checkStarted = performance.now();
    await flow.check(target, code, workflowId);
    const checkMs = since(checkStarted);
    const checkedAt = Date.now();
    into.send.push(sendMs);
    into.check.push(checkMs);
    into.total.push(sendMs + checkMs);
    into.sampleId = workflowId;
    if (workflowId) {
      into.recent = [...into.recent.slice(-29), { workflowId, sendAt, sentAt, checkAt, checkedAt }];
    }
    return target;
  };

  // Warm-up: the first tasks of each kind pay for isolates, caches, JIT and connections.
  for (const flow of flows)
    await pool(concurrency, concurrency, () => runFlow(flow, statsOf(flow, 'warmup')));

  // One at a time, the scenarios take turns flow by flow.
  const sequentialFrom = Date.now();
  for (let i = 0; i < windows; i++) {
    for (const flow of rotate(flows, i)) {
      const into = statsOf(flow, 'sequential');
      const started = performance.now();
      const target = await runFlow(flow, into);
      into.wallMs += since(started);
      // Noted here only, where it is read: in the concurrent chunks it would be billed to the
      // scenario's CPU (it parses the number again).
      if (flow.admittedBy) into.admitters.add(flow.admittedBy(target));
    }
  }
  // The sends' updates on a shared entity (a guard shard, an admission entity) are billed too: in
  // those entities' histories, what they were asked during the sequential flows, per flow (a lease
  // serves many sends, so one send's own may be none). Only that scenario's sends reach its entities.
  // Read now, before later sends make them continue as new.
  const sequentialTo = Date.now();
  for (const flow of flows) {
    const into = statsOf(flow, 'sequential');
    if (!flow.admittedBy || into.admitters.size === 0) continue;
    const actions = await actionsOf(client, [...into.admitters], [sequentialFrom, sequentialTo]);
    if (actions === 0) throw new Error(`${flow.name}: no update that admitted its sends is found`);
    into.admissionActions = Number((actions / into.send.length).toFixed(2));
  }
  // A user reads the code for seconds before typing it: the same flows with the check BENCH_READ_MS
  // after the send, once the server's own work after the send (history, timers, visibility) is done.
  // The immediate check above pays for that work too: it reaches the window within milliseconds.
  if (readMs > 0) {
    for (let i = 0; i < Math.min(windows, 30); i++) {
      for (const flow of rotate(flows, i)) {
        const into = statsOf(flow, 'after_reading');
        const started = performance.now();
        await runFlow(flow, into, readMs);
        into.wallMs += since(started) - readMs;
      }
    }
  }
  // At BENCH_CONCURRENCY, they take turns round by round.
  for (const [round, count] of split(windows, rounds).entries()) {
    for (const flow of rotate(flows, round)) {
      const into = statsOf(flow, 'concurrent');
      // Each chunk runs alone, so the CPU it took is its scenario's: what its throughput is bound by.
      const before = readCpu(serverPid, sandboxPid);
      into.wallMs += await pool(count, concurrency, () => runFlow(flow, into));
      into.cpu.push(cpuBetween(before, readCpu(serverPid, sandboxPid)));
    }
  }

  const modes =
    readMs > 0
      ? (['sequential', 'after_reading', 'concurrent'] as const)
      : (['sequential', 'concurrent'] as const);
  for (const mode of modes) {
    const summaries = new Map<FlowName, ReturnType<typeof summarize>>();
    for (const flow of flows) {
      const summary = summarize(statsOf(flow, mode));
      summaries.set(flow.name, summary);
      emit({ scenario: flow.name, mode, concurrency: mode === 'concurrent' ? concurrency : 1, ...summary });
    }
    for (const [of, anchor] of [
      ['project', 'bare'],
      ['project', 'floor'],
      ['unguarded', 'bare'],
      ['shard_admission', 'bare'],
      ['project', 'shard_admission'],
      ['bound', 'bare'],
      ['project', 'bound'],
      ['unguarded_bound', 'bare'],
      ['unguarded', 'unguarded_bound'],
    ] as const) {
      const project = summaries.get(of);
      const base = summaries.get(anchor);
      if (!project || !base) continue;
      emit({
        scenario: 'ratio',
        mode,
        of,
        to: anchor,
        // Above 1: the project is slower (latency) or faster (throughput) than the anchor.
        flow_p50: Number((project.flow_p50_ms / base.flow_p50_ms).toFixed(2)),
        send_p50: Number((project.send_p50_ms / base.send_p50_ms).toFixed(2)),
        check_p50: Number((project.check_p50_ms / base.check_p50_ms).toFixed(2)),
        flows_per_s: Number((project.flows_per_s / base.flows_per_s).toFixed(2)),
        ...(project.cpu_ms_per_flow && base.cpu_ms_per_flow
          ? { cpu_per_flow: Number((project.cpu_ms_per_flow / base.cpu_ms_per_flow).toFixed(2)) }
          : {}),
      });
    }
  }

  // The history a finished flow leaves, for the "lean history" target, and the Temporal actions it
  // cost (what Temporal Cloud bills), the project's limits entity included.
  const finished: Record<string, unknown> = { scenario: 'history' };
  for (const flow of flows) {
    const id = statsOf(flow, 'sequential').sampleId;
    if (!id) continue;
    await client.workflow.getHandle(id).result();
    finished[`${flow.name}_events_per_verified_window`] = (await historyLengths(client, [id]))[0];
    const executions = [id, ...(flow.besides?.(id) ?? [])];
    finished[`${flow.name}_actions_per_verified_window`] =
      (await actionsOf(client, executions)) + (statsOf(flow, 'sequential').admissionActions ?? 0);
  }
  if (Object.keys(finished).length > 1) emit(finished);

  // Where each scenario's time went, hop by hop, in its last sequential flows (after_reading's too).
  for (const mode of modes.filter((m) => m !== 'concurrent')) {
    for (const flow of flows) {
      const recent = statsOf(flow, mode).recent;
      if (recent.length > 0)
        emit({ scenario: 'hops', of: flow.name, mode, ...(await hopsOf(client, recent)) });
    }
  }
}

/** A flow's workflow and the client's clock around its calls (ms since the epoch). */
interface TimedFlow {
  workflowId: string;
  sendAt: number;
  sentAt: number;
  checkAt: number;
  checkedAt: number;
}

/**
 * p50 of each hop of a verified window, from its history's event times (the server runs on this
 * machine: its clock is the client's): the send's first workflow task (waiting for a worker, then
 * run), and the check's two tasks around its activity, the wait between the activity's end and the
 * second task included. Beside them, the time the client's calls spend outside those tasks: from
 * the call to its first task (the send's guard, the update's way to a worker), and from the last
 * task to the answer. Flows whose check runs no activity (the floor) have only the send's hops.
 */
async function hopsOf(client: Client, flows: TimedFlow[]): Promise<Record<string, number>> {
  const { EventType } = temporal.api.enums.v1;
  const hops: Record<string, number[]> = {};
  const add = (hop: string, from?: number, to?: number) => {
    if (from !== undefined && to !== undefined) (hops[hop] ??= []).push(to - from);
  };
  for (const { workflowId, sendAt, sentAt, checkAt, checkedAt } of flows) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const at = (i: number) => eventMs(events[i]);
    const index = (type: number, from = 0) => events.findIndex((e, i) => i >= from && e.eventType === type);
    const lastIndex = (type: number, before = events.length) => {
      for (let i = before - 1; i >= 0; i--) if (events[i]!.eventType === type) return i;
      return -1;
    };
    const firstTask = index(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
    const firstTaskDone = index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, firstTask);
    add('send_call_to_start_ms', sendAt, at(0));
    add('send_task_wait_ms', at(0), at(firstTask));
    add('send_task_ms', at(firstTask), at(firstTaskDone));
    add('send_answer_ms', at(firstTaskDone), sentAt);
    const scheduled = lastIndex(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
    if (scheduled < 0) continue;
    const checkTask = lastIndex(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, scheduled);
    const activityDone = index(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, scheduled);
    const closeTask = index(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, activityDone);
    add('check_call_to_task_ms', checkAt, at(checkTask));
    add('check_task_ms', at(checkTask), at(index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, checkTask)));
    add(
      'check_activity_wait_ms',
      at(scheduled),
      at(index(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, scheduled)),
    );
    add(
      'check_activity_ms',
      at(index(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, scheduled)),
      at(activityDone),
    );
    add('check_task_wait_ms', at(activityDone), at(closeTask));
    const closed = at(index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, closeTask));
    add('check_close_task_ms', at(closeTask), closed);
    add('check_answer_ms', closed, checkedAt);
  }
  return Object.fromEntries(Object.entries(hops).map(([hop, ms]) => [hop, percentiles(ms).p50]));
}

function summarize(stats: FlowStats) {
  const send = percentiles(stats.send);
  const check = percentiles(stats.check);
  // Per flow over the rounds measured; the server's only when every round read it.
  const perFlow = (ms: (number | undefined)[]) =>
    ms.length === 0 || ms.includes(undefined)
      ? undefined
      : round1(ms.reduce((sum: number, x) => sum + x!, 0) / Math.max(1, stats.total.length));
  const processCpu = perFlow(stats.cpu.map((round) => round.processMs));
  const serverCpu = perFlow(stats.cpu.map((round) => round.serverMs));
  const sandboxCpu = perFlow(stats.cpu.map((round) => round.sandboxMs));
  return {
    flows: stats.total.length,
    flows_per_s: round1((stats.total.length / stats.wallMs) * 1000),
    flow_p50_ms: percentiles(stats.total).p50,
    send_p50_ms: send.p50,
    send_p95_ms: send.p95,
    send_p99_ms: send.p99,
    check_p50_ms: check.p50,
    check_p95_ms: check.p95,
    check_p99_ms: check.p99,
    // CPU per flow (concurrent rounds only): the bench process (client, workers), the dev server,
    // and both: on a machine this size, what bounds the throughput. No total without the server's
    // share (a server this bench did not start): it would pass for the whole. The sandbox's is
    // Prelude's work, apart: it shares the cores, but no deployment runs it.
    ...(processCpu === undefined ? {} : { process_cpu_ms_per_flow: processCpu }),
    ...(serverCpu === undefined ? {} : { server_cpu_ms_per_flow: serverCpu }),
    ...(processCpu === undefined || serverCpu === undefined
      ? {}
      : { cpu_ms_per_flow: round1(processCpu + serverCpu) }),
    ...(sandboxCpu === undefined ? {} : { sandbox_cpu_ms_per_flow: sandboxCpu }),
  };
}

/**
 * Delivery reports through the route against bare `signal` calls carrying the same reports to the
 * same runs: a webhook's 200 means Temporal holds the signal, so the difference is what the route
 * adds (HTTP, the signature check, parsing). The runs are bare open workflows under window IDs
 * (signals to them are buffered, as the window's own are taken), a few reports each as Prelude sends
 * them; started before and terminated after, untimed. Bare workflow starts are measured beside them:
 * what a workflow per event (the ingest run this route no longer starts) would cost at least.
 */
async function measureWebhooks(
  url: string,
  webhookKey: KeyObject,
  client: Client,
  bareQueue: string,
): Promise<void> {
  const reportsPerRun = 3;
  const runIds = Array.from(
    { length: Math.ceil(windows / reportsPerRun) },
    () => `${windowIdPrefix}bench-${randomUUID()}`,
  );
  await pool(runIds.length, concurrency, async (i) => {
    await client.workflow.start(bareWindow, {
      workflowId: runIds[i]!,
      taskQueue: bareQueue,
      args: [nextTarget()],
    });
  });

  const now = new Date().toISOString();
  const reports = (path: string): { workflowId: string; report: DeliveryStatusReport }[] =>
    Array.from({ length: windows }, (_, n) => ({
      workflowId: runIds[n % runIds.length]!,
      report: {
        eventId: `evt_bench_${path}_${randomUUID()}`,
        attemptId: `att_${path}_${n}`,
        verificationId: `vrf_${n}`,
        status: 'delivered',
        time: now,
      },
    }));
  // Signed up front: signing is Prelude's work, not the receiver's.
  const events = reports('route').map(({ workflowId, report }) => {
    const body = JSON.stringify({
      id: report.eventId,
      type: 'verify.delivery_status',
      created_at: now,
      payload: {
        id: `dlv_${report.attemptId}`,
        attempt_id: report.attemptId,
        verification_id: report.verificationId,
        time: now,
        status: report.status,
        metadata: { correlation_id: workflowId },
      },
    });
    const signature = sign('sha256', Buffer.from(body), {
      key: webhookKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    return { body, signature: `rsassa-pss-sha256=${signature.toString('base64')}` };
  });
  const signals = reports('bare');

  const deliveries = { ms: [] as number[], wallMs: 0 };
  const bareSignals = { ms: [] as number[], wallMs: 0 };
  const starts = { ms: [] as number[], wallMs: 0 };
  const measurements = [
    async (count: number) => {
      const batch = events.splice(0, count);
      deliveries.wallMs += await pool(count, concurrency, async (i) => {
        const event = batch[i]!;
        const started = performance.now();
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-webhook-signature': event.signature },
          body: event.body,
        });
        const answer = (await response.json()) as { status?: string; disposition?: string };
        if (answer.disposition !== 'applied')
          throw new Error(`webhook answered ${response.status} ${JSON.stringify(answer)}`);
        deliveries.ms.push(since(started));
      });
    },
    async (count: number) => {
      const batch = signals.splice(0, count);
      bareSignals.wallMs += await pool(count, concurrency, async (i) => {
        const { workflowId, report } = batch[i]!;
        const started = performance.now();
        await client.workflow.getHandle(workflowId).signal(deliveryStatusSignal, report);
        bareSignals.ms.push(since(started));
      });
    },
    async (count: number) => {
      const handles: { result(): Promise<unknown> }[] = [];
      starts.wallMs += await pool(count, concurrency, async () => {
        const started = performance.now();
        handles.push(
          await client.workflow.start(bareStart, {
            workflowId: `bench-start-${randomUUID()}`,
            taskQueue: bareQueue,
          }),
        );
        starts.ms.push(since(started));
      });
      // Untimed: the runs finish before the next measurement, so none pays for another's backlog.
      await Promise.all(handles.map((handle) => handle.result()));
    },
  ];
  for (const [round, count] of split(windows, rounds).entries()) {
    for (const measurement of rotate(measurements, round)) await measurement(count);
  }
  await pool(runIds.length, concurrency, async (i) => {
    await client.workflow.getHandle(runIds[i]!).terminate('the webhooks scenario is over');
  });
  const rate = ({ ms, wallMs }: { ms: number[]; wallMs: number }) => round1((ms.length / wallMs) * 1000);
  emit({
    scenario: 'webhooks',
    concurrency,
    events: deliveries.ms.length,
    runs: runIds.length,
    delivered_per_s: rate(deliveries),
    delivery_p50_ms: percentiles(deliveries.ms).p50,
    delivery_p99_ms: percentiles(deliveries.ms).p99,
    bare_signals_per_s: rate(bareSignals),
    bare_signal_p50_ms: percentiles(bareSignals.ms).p50,
    bare_signal_p99_ms: percentiles(bareSignals.ms).p99,
    bare_starts_per_s: rate(starts),
    bare_start_p50_ms: percentiles(starts.ms).p50,
    bare_start_p99_ms: percentiles(starts.ms).p99,
    ratio: Number((rate(deliveries) / rate(bareSignals)).toFixed(2)),
  });
}

/**
 * The events of these executions' histories that Temporal Cloud bills as actions: starts, signals,
 * updates, activities, local-activity markers, timers, child starts.
 */
async function actionsOf(
  client: Client,
  workflowIds: string[],
  /** Only the events of this span (ms since the epoch): a shared entity's of one send. */
  during?: [number, number],
): Promise<number> {
  const { EventType } = temporal.api.enums.v1;
  const billed = new Set([
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
  ]);
  const inSpan = (event: temporal.api.history.v1.IHistoryEvent) => {
    if (!during) return true;
    const ms = eventMs(event);
    return ms !== undefined && ms >= during[0] && ms <= during[1];
  };
  let actions = 0;
  for (const workflowId of workflowIds) {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    actions += (history.events ?? []).filter((e) => billed.has(e.eventType!) && inSpan(e)).length;
  }
  return actions;
}

/** A history event's time in ms since the epoch (the dev server's clock is this machine's). */
function eventMs(event: temporal.api.history.v1.IHistoryEvent | undefined): number | undefined {
  const time = event?.eventTime;
  return time ? Number(time.seconds) * 1000 + (time.nanos ?? 0) / 1e6 : undefined;
}

async function historyLengths(client: Client, workflowIds: string[]): Promise<number[]> {
  return Promise.all(
    workflowIds.map(async (id) => (await client.workflow.getHandle(id).fetchHistory()).events?.length ?? 0),
  );
}

async function terminateOpenWindows(client: Client, admissionShards: number): Promise<void> {
  await pool(openWindowIds.length, concurrency, async (i) => {
    await client.workflow.getHandle(openWindowIds[i]!).terminate('npm run bench is over');
  });
  // The bound's per-target records would start in an hour, on a task queue no worker polls then.
  await pool(startedRecordIds.length, concurrency, async (i) => {
    await client.workflow.getHandle(startedRecordIds[i]!).terminate('npm run bench is over');
  });
  // The bound's admission entities live until terminated.
  for (let shard = 0; shard < admissionShards; shard++) {
    await client.workflow
      .getHandle(`${admissionIdPrefix}${shard}`)
      .terminate('npm run bench is over')
      .catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
  }
}

interface WorkerProcess {
  process: ChildProcess;
  taskQueue: string;
  ready: Extract<WorkerProcessMessage, { type: 'ready' }>;
  /** From fork to polling: node's start, imports, connections, Worker.create from the bundle. */
  readyMs: number;
}

async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const started = performance.now();
  const child = fork(join(__dirname, 'worker-process.js'), [], {
    // --expose-gc: the worker collects garbage before it reports its heap.
    execArgv: ['--expose-gc'],
    env: {
      ...process.env,
      ...Object.fromEntries(Object.entries(env).map(([k, v]) => [`BENCH_CHILD_${k}`, v])),
    },
  });
  const ready = await nextMessage<WorkerProcessMessage, 'ready'>(child, 'ready');
  return { process: child, taskQueue: env.TASK_QUEUE!, ready, readyMs: since(started) };
}

function workerMemory(child: ChildProcess) {
  const answer = nextMessage<WorkerProcessMessage, 'memory'>(child, 'memory');
  child.send('memory');
  return answer;
}

/** A child process's next message of a type; rejects if it exits first. */
function nextMessage<M extends { type: string }, T extends M['type']>(
  child: ChildProcess,
  type: T,
): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: M) => {
      if (message.type !== type) return;
      child.off('exit', onExit);
      child.off('message', onMessage);
      resolve(message as Extract<M, { type: T }>);
    };
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`the child process exited (code ${code}) before its ${type} message`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
  child.send('stop');
  await exited;
  clearTimeout(kill);
}

/** The sandbox in a process of its own (bench/sandbox-process.ts), configured by `env`. */
async function startSandboxProcess(env: Record<string, string | undefined>) {
  const child = fork(join(__dirname, 'sandbox-process.js'), [], { env });
  const ready = await nextMessage<SandboxProcessMessage, 'ready'>(child, 'ready');
  return { process: child, pid: child.pid, url: ready.url, publicKeyPem: ready.publicKeyPem };
}

function printTable(): void {
  const flows = output.filter(
    (line) => allScenarios.includes(line.scenario as ScenarioName) && 'mode' in line,
  );
  const widths = [16, 14, 9, 24, 24];
  const row = (cells: unknown[]) => cells.map((cell, i) => String(cell).padEnd(widths[i]!)).join('');
  const triple = (line: Record<string, unknown>, what: string) =>
    `${line[`${what}_p50_ms`]} / ${line[`${what}_p95_ms`]} / ${line[`${what}_p99_ms`]}`;
  console.log('');
  if (flows.length > 0) {
    console.log(row(['scenario', 'mode', 'flows/s', 'send p50/95/99 ms', 'check p50/95/99 ms', 'CPU']));
    for (const line of flows) {
      const sandboxCpu =
        line.sandbox_cpu_ms_per_flow === undefined ? '' : `; sandbox ${line.sandbox_cpu_ms_per_flow}`;
      const cpu =
        line.cpu_ms_per_flow !== undefined
          ? `${line.cpu_ms_per_flow} ms/flow (process ${line.process_cpu_ms_per_flow}, server ${line.server_cpu_ms_per_flow}${sandboxCpu})`
          : line.process_cpu_ms_per_flow !== undefined
            ? `process ${line.process_cpu_ms_per_flow} ms/flow`
            : '';
      console.log(
        row([line.scenario, line.mode, line.flows_per_s, triple(line, 'send'), triple(line, 'check')]) + cpu,
      );
    }
  }
  for (const line of output) {
    if (line.scenario === 'ratio') {
      console.log(
        `${String(line.of)} ÷ ${String(line.to)} (${String(line.mode)}): flow p50 ×${line.flow_p50}, check p50 ×${line.check_p50}, flows/s ×${line.flows_per_s}` +
          (line.cpu_per_flow === undefined ? '' : `, CPU per flow ×${line.cpu_per_flow}`),
      );
    } else if (line.scenario === 'webhooks') {
      console.log(
        `webhooks: ${line.delivered_per_s}/s delivered through the route (200 = signal held) vs ${line.bare_signals_per_s}/s bare signals to the same runs (×${line.ratio}); bare starts ${line.bare_starts_per_s}/s`,
      );
    } else if (line.scenario === 'open') {
      console.log(
        `open: ${line.windows} windows, worker RSS ${line.worker_rss_mib} MiB (from ${line.worker_rss_mib_before}), main-thread heap ${line.worker_main_thread_heap_mib} MiB, cache ${line.max_cached_workflows}, events/window ${String(line.events_per_open_window)}`,
      );
    } else if (line.scenario === 'startup') {
      console.log(
        `startup: worker process ready in ${line.process_ready_ms} ms (Worker.create ${line.process_create_ms} ms), in process ${line.in_process_create_ms} ms`,
      );
    } else if (line.scenario === 'hops') {
      const { scenario: _scenario, of, mode, ...hops } = line;
      console.log(`hops ${String(of)} (${String(mode)}, p50 ms): ${JSON.stringify(hops)}`);
    } else if (line.scenario === 'history') {
      const { scenario: _scenario, ...counts } = line;
      console.log(`history events: ${JSON.stringify(counts)}`);
    }
  }
}

runBenchmark(run);
