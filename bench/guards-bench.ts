/**
 * `npm run bench:guards`: does a send guard become the bottleneck? Sends through `startVerification`
 * to fresh numbers of one country (spread over its ranges, each from its own IP and device, as real
 * users come), with the guards off, on (GUARD_SHARDS shards), and on with a single shard, interleaved
 * round by round in one run on one dev server, one sandbox and one worker.
 *
 * - `closed`: BENCH_SENDS sends per scenario at BENCH_CONCURRENCY in flight, no budget binding: the
 *   most sends per second each scenario carries.
 * - `paced`: the guards configured at 10 times the default budget and burst, and sends offered at 10
 *   times the default burst rate for BENCH_PACED_SECONDS: every send must pass, at what latency.
 * - `state`: one shard's guard update, one at a time, when the shard already counts BENCH_SHARD_COUNTED
 *   sends of its period (each from its own IP and device, as a high-volume app's shard carries them
 *   through continue-as-new), against an empty shard in the same run: what a shard's traffic adds to
 *   every send's guard, and the size of the state it carries; and on that loaded shard, updates that
 *   each report an admission of their lease (judged as if it were counted), and updates that each ask
 *   a lease (its exceptions are found among every key the shard holds).
 *
 * Prints JSON lines; compare the ratios, not absolute times, across machines.
 * Uses TEMPORAL_ADDRESS when set, otherwise starts a headless dev server.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig, loadSection } from '../temporal.config';
import { z } from 'zod';
import { envSection, list, setting, wholeNumber } from '../src/env';
import { startVerification, verificationClientOptions, VerificationError } from '../src/client';
import { dataConverterFor } from '../src/codec';
import { connectClient } from '../src/connection';
import { startDevServer } from '../src/devserver';
import { resetCountryGuard } from '../src/guards/admin';
import { guardShardId, shardLimits } from '../src/guards/check';
import { sendGuardWorkflow } from '../workflows/send-guard';
import { guardSendUpdate, type SendGuardInput } from '../workflows/send-guard-messages';
import type { SendGuardSettings } from '../src/guards/settings';
import { PreludeClient } from '../src/prelude';
import { startSandbox } from '../src/sandbox';
import { createVerificationWorker, writeWorkflowBundle } from '../src/worker';
import { runBenchmark, type Cleanups } from './harness';
import { percentiles, pool, rotate, round1, since, split } from './measure';

const knobs = loadSection(
  envSection({
    sends: setting('BENCH_SENDS', wholeNumber(10, 100_000), 600),
    concurrency: setting('BENCH_CONCURRENCY', wholeNumber(1, 1_000), 16),
    pacedSeconds: setting('BENCH_PACED_SECONDS', wholeNumber(5, 3_600), 30),
    // At most what a shard carries at the bench's 188 bytes a send (1.5 MB): past it, it is full and refuses.
    shardCounted: setting('BENCH_SHARD_COUNTED', wholeNumber(1, 7_000), 5_000),
    stateUpdates: setting('BENCH_STATE_UPDATES', wholeNumber(10, 100_000), 200),
    parts: setting('BENCH_GUARD_PARTS', list(z.array(z.enum(['closed', 'paced', 'state'])))),
  }),
);

function emit(line: Record<string, unknown>): void {
  console.log(JSON.stringify(line));
}

// Fresh UK numbers a block (1000 numbers) apart, so that no range is pumped.
let nextNumber = randomInt(0, 1_000_000);
const nextNumberValue = () => {
  nextNumber = (nextNumber + 1_009) % 1_000_000;
  return `+447400${String(nextNumber).padStart(6, '0')}`;
};
const randomIp = () => `10.${randomInt(0, 256)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

async function run(cleanups: Cleanups): Promise<void> {
  const devServer = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ uiPort: false });
  if (devServer) cleanups.push(() => devServer.stop());
  const config = loadConfig({
    ...process.env,
    TEMPORAL_ADDRESS: devServer?.address ?? process.env.TEMPORAL_ADDRESS,
    PRIVACY_MODE: 'encrypted',
    VERIFY_ID_KEY: randomBytes(24).toString('base64'),
    PAYLOAD_CODEC_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    SANDBOX_PORT: '0',
    SANDBOX_MIN_RETRY_DELAY_SECONDS: '0',
    SANDBOX_NUMBER_RATE_LIMIT: '0',
  });
  const sandbox = await startSandbox(config.sandbox);
  cleanups.push(() => sandbox.stop());
  const prelude = new PreludeClient({ apiKey: 'bench', baseUrl: sandbox.url, timeoutMs: 10_000 });
  const dataConverter = dataConverterFor(config.privacy.keyRing);
  const client = await connectClient(config.temporal, dataConverter);
  cleanups.push(() => client.connection.close());
  const bundle = await writeWorkflowBundle(join(tmpdir(), `prelude-temporal-guards-${randomUUID()}.js`));
  cleanups.push(async () => rmSync(bundle, { force: true }));
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  cleanups.push(() => connection.close());
  const taskQueue = `bench-guards-${randomUUID()}`;
  const worker = await createVerificationWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue,
    client,
    prelude,
    dataConverter,
    workflowBundle: bundle,
  });
  const running = worker.run();
  running.catch(() => undefined);
  cleanups.push(async () => {
    worker.shutdown();
    await running;
  });

  const base = { ...verificationClientOptions(config), taskQueue };
  const defaults = config.guards;
  const unbound: SendGuardSettings['country'] = {
    ...defaults.country,
    sends: 10_000_000,
    burst: 1_000_000,
  };
  const scenarios: { name: string; guards: SendGuardSettings }[] = [
    { name: 'guards off', guards: { ...defaults, mode: 'off' } },
    { name: `guards on, ${defaults.shards} shards`, guards: { ...defaults, country: unbound } },
    { name: 'guards on, 1 shard', guards: { ...defaults, country: unbound, shards: 1 } },
  ];

  /** One send from a fresh user; its latency, or the refusal's code. */
  const send = async (guards: SendGuardSettings): Promise<{ ms: number } | { refused: string }> => {
    const started = performance.now();
    try {
      await startVerification(
        client,
        {
          target: { type: 'phone_number', value: nextNumberValue() },
          signals: { ip: randomIp(), device_id: randomUUID() },
        },
        { ...base, guards },
      );
      return { ms: since(started) };
    } catch (error) {
      if (error instanceof VerificationError) return { refused: error.code };
      throw error;
    }
  };

  const runs = (part: 'closed' | 'paced' | 'state') => knobs.parts.length === 0 || knobs.parts.includes(part);
  if (runs('closed')) await closedLoop();
  if (runs('paced')) await paced();
  if (runs('state')) await shardState();

  async function closedLoop(): Promise<void> {
    // Warm-up: isolates, caches, connections, and each scenario's guard entities started.
    for (const scenario of scenarios) await pool(32, 8, async () => void (await send(scenario.guards)));

    // Closed loop: each scenario's most sends per second, round by round.
    const closed = new Map(
      scenarios.map((s) => [
        s.name,
        { ms: [] as number[], refused: {} as Record<string, number>, wallMs: 0 },
      ]),
    );
    const rounds = 5;
    for (const [round, count] of split(knobs.sends, rounds).entries()) {
      for (const scenario of rotate(scenarios, round)) {
        const into = closed.get(scenario.name)!;
        into.wallMs += await pool(count, knobs.concurrency, async () => {
          const answer = await send(scenario.guards);
          if ('ms' in answer) into.ms.push(answer.ms);
          else into.refused[answer.refused] = (into.refused[answer.refused] ?? 0) + 1;
        });
      }
    }
    const summaries = new Map<string, { sends_per_s: number; send_p50_ms: number }>();
    for (const scenario of scenarios) {
      const stats = closed.get(scenario.name)!;
      const { p50, p95 } = percentiles(stats.ms);
      const summary = { sends_per_s: round1((stats.ms.length / stats.wallMs) * 1000), send_p50_ms: p50 };
      summaries.set(scenario.name, summary);
      emit({
        bench: 'guards',
        mode: 'closed',
        concurrency: knobs.concurrency,
        scenario: scenario.name,
        sends: stats.ms.length,
        refused: stats.refused,
        ...summary,
        send_p95_ms: p95,
      });
    }
    const off = summaries.get('guards off')!;
    for (const scenario of scenarios.slice(1)) {
      const on = summaries.get(scenario.name)!;
      emit({
        bench: 'guards',
        mode: 'closed',
        ratio: `${scenario.name} / guards off`,
        sends_per_s: Number((on.sends_per_s / off.sends_per_s).toFixed(2)),
        send_p50: Number((on.send_p50_ms / off.send_p50_ms).toFixed(2)),
      });
    }
  }

  // Paced: 10 times the default burst rate, against guards set at 10 times the default budget.
  async function paced(): Promise<void> {
    const tenTimes: SendGuardSettings = {
      ...defaults,
      country: {
        ...defaults.country,
        sends: defaults.country.sends * 10,
        burst: defaults.country.burst * 10,
      },
    };
    const ratePerS = (defaults.country.burst * 10) / defaults.country.burstSeconds;
    // What the closed loop counted would use up the burst: the paced run starts from a reset guard.
    await resetCountryGuard(client, 'GB', { ...base, guards: tenTimes });
    for (const scenario of [
      { name: 'guards off', guards: { ...defaults, mode: 'off' as const } },
      { name: 'guards on at 10x the default budget', guards: tenTimes },
    ]) {
      const total = Math.round(ratePerS * knobs.pacedSeconds);
      const answers: Promise<{ ms: number } | { refused: string }>[] = [];
      const started = performance.now();
      for (let i = 0; i < total; i++) {
        const due = started + (i * 1000) / ratePerS;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        answers.push(send(scenario.guards));
      }
      const settled = await Promise.all(answers);
      const refusedBy: Record<string, number> = {};
      for (const answer of settled)
        if ('refused' in answer) refusedBy[answer.refused] = (refusedBy[answer.refused] ?? 0) + 1;
      const wallMs = since(started);
      const ms = settled.flatMap((a) => ('ms' in a ? [a.ms] : []));
      const { p50, p95 } = percentiles(ms);
      emit({
        bench: 'guards',
        mode: 'paced',
        scenario: scenario.name,
        offered_per_s: round1(ratePerS),
        default_burst_per_s: round1(defaults.country.burst / defaults.country.burstSeconds),
        sends: total,
        passed: ms.length,
        refused: refusedBy,
        achieved_per_s: round1((ms.length / wallMs) * 1000),
        send_p50_ms: p50,
        send_p95_ms: p95,
      });
    }
  }

  /**
   * A shard that already counts `counted` sends of its period, as continue-as-new hands them over:
   * each send from its own IP and device, to a fresh number, the times spread over the last hour
   * (the blocks' over their shorter period). Budgets no run reaches: every update is granted.
   */
  function loadedShard(counted: number, shard: number): SendGuardInput {
    const now = Date.now();
    const limits = shardLimits({ ...defaults, country: unbound }, 'GB', shard);
    const hour = defaults.country.periodSeconds * 1000;
    const blockPeriod = defaults.block.periodSeconds * 1000;
    const sends = Array.from({ length: counted }, (_, i) => now - hour + ((i + 1) * hour) / (counted + 1));
    const key = (kind: string, i: number) => `${kind}${String(i).padStart(22, '0')}`;
    const ips: Record<string, number[]> = {};
    const devices: Record<string, number[]> = {};
    const blocks: NonNullable<SendGuardInput['blocks']> = {};
    sends.forEach((at, i) => {
      ips[key('ip', i)] = [at];
      devices[key('dv', i)] = [at];
      const blockAt = now - blockPeriod + ((i + 1) * blockPeriod) / (counted + 1);
      (blocks[`+4474${String(i % 100_000).padStart(5, '0')}`] ??= []).push({
        key: key('nb', i),
        at: blockAt,
      });
    });
    return { country: 'GB', shard, sends, ips, devices, blocks, recent: [], limits };
  }

  /** One shard's guard updates one at a time, on an empty shard and on a loaded one, interleaved. */
  async function shardState(): Promise<void> {
    const loadedCount = knobs.shardCounted;
    const shards = [
      { name: 'empty', counted: 0, shard: 0, carries: 'nothing' },
      { name: `${loadedCount} counted`, counted: loadedCount, shard: 1, carries: 'nothing' },
      // Each send reports one admission of its process's lease, as a send the shard judges does
      // while its lease has admitted sends it has not reported: judged as if they were counted.
      {
        name: `${loadedCount} counted, with a lease's report`,
        counted: loadedCount,
        shard: 2,
        carries: 'report',
      },
      // Each send asks a new lease and reports the last, as a process's send does once per lease.
      {
        name: `${loadedCount} counted, with a lease request`,
        counted: loadedCount,
        shard: 3,
        carries: 'lease',
      },
    ] as const;
    const ms = new Map(shards.map((s) => [s.name, [] as number[]]));
    const startOf = ({ shard }: { shard: number }) => ({
      country: 'GB',
      shard,
      workflowId: `${guardShardId(taskQueue, 'GB', shard)}-state-${randomUUID()}`,
    });
    const started = shards.map((s) => ({ ...s, ...startOf(s), input: loadedShard(s.counted, s.shard) }));
    let n = 0;
    /** One guard update, as a send makes it; `loaded`: the one that starts the shard with its state. */
    const update = async (s: (typeof started)[number], { loaded = false } = {}) => {
      n += 1;
      const admitted = {
        requestId: `state-admitted-${n}-${randomUUID()}`,
        at: Date.now() - 1_000,
        block: `+4476${String(n % 100_000).padStart(5, '0')}`,
        numberKey: `nb-admitted-${n}`,
        ipKey: `ip-admitted-${n}`,
        deviceKey: `dv-admitted-${n}`,
      };
      const t0 = performance.now();
      await client.workflow.executeUpdateWithStart(guardSendUpdate, {
        args: [
          {
            requestId: `state-${n}-${randomUUID()}`,
            block: `+4475${String(n % 100_000).padStart(5, '0')}`,
            numberKey: `nb-state-${n}`,
            ipKey: `ip-state-${n}`,
            deviceKey: `dv-state-${n}`,
            limits: s.input.limits!,
            ...(s.carries === 'report' && !loaded ? { interim: [admitted] } : {}),
            ...(s.carries === 'lease' && !loaded
              ? {
                  lease: {
                    leaseId: `state-lease-${n}`,
                    reports: [{ leaseId: `state-lease-${n - 1}`, admissions: [admitted] }],
                    units: 4,
                  },
                }
              : {}),
          },
        ],
        // The first starts the shard from what it counts, as its continue-as-new would hand it
        // over; the others carry a send's own start arguments (ignored by the running shard).
        startWorkflowOperation: new WithStartWorkflowOperation(sendGuardWorkflow, {
          workflowId: s.workflowId,
          taskQueue,
          args: [loaded ? s.input : { country: s.country, shard: s.shard }],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      });
      return since(t0);
    };
    // The first update starts each shard: not counted.
    for (const s of started) await update(s, { loaded: true });
    const rounds = 10;
    for (const [round, count] of split(knobs.stateUpdates, rounds).entries()) {
      for (const s of rotate(started, round)) {
        for (let i = 0; i < count; i++) ms.get(s.name)!.push(await update(s));
      }
    }
    const p50s = new Map<string, number>();
    for (const s of started) {
      const { p50, p95 } = percentiles(ms.get(s.name)!);
      p50s.set(s.name, p50);
      emit({
        bench: 'guards',
        mode: 'state',
        shard: s.name,
        counted: s.counted,
        state_bytes: Buffer.byteLength(JSON.stringify(s.input)),
        updates: ms.get(s.name)!.length,
        update_p50_ms: p50,
        update_p95_ms: p95,
      });
    }
    const [empty, plain, reporting, leasing] = started.map((s) => p50s.get(s.name)!);
    emit({
      bench: 'guards',
      mode: 'state',
      ratio: 'loaded / empty',
      update_p50: Number((plain! / empty!).toFixed(2)),
    });
    emit({
      bench: 'guards',
      mode: 'state',
      ratio: 'loaded with a report / loaded',
      update_p50: Number((reporting! / plain!).toFixed(2)),
    });
    emit({
      bench: 'guards',
      mode: 'state',
      ratio: 'loaded with a lease request / loaded',
      update_p50: Number((leasing! / plain!).toFixed(2)),
    });
  }
}

runBenchmark(run);
