/**
 * `npm run bench:cluster`: the verification flow on the dev server against the production-shaped
 * cluster, in one run, on the same machine, with the project's parts the same on both (the sandbox,
 * two workers as processes; tools/cluster). For each server, in turn:
 *
 * - BENCH_WINDOWS (default 100) flows one at a time, then BENCH_WINDOWS at BENCH_CONCURRENCY
 *   (default 10) with two workers, then the same with one (the other stopped);
 * - each flow is `startVerification`, the code from the sandbox's inbox (in neither figure), and
 *   `checkCode`, from this process through one client, as bench/bench.ts measures the project;
 * - servers: `devserver`, `cluster` (deploy/temporal/dynamicconfig.yaml), and `cluster-defaults`
 *   (the server's default dynamic config), unless BENCH_SERVERS (a comma list) names fewer.
 *
 * Prints one JSON line per server and mode. Not measured here: 10,000 open windows.
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { percentiles, pool, round1, since } from '../../bench/measure';
import { z } from 'zod';
import { loadConfig, loadSection } from '../../temporal.config';
import { envSection, list, setting, wholeNumber } from '../../src/env';
import { checkCode, startVerification, verificationClientOptions } from '../../src/client';
import { dataConverterFor } from '../../src/codec';
import { connectClient } from '../../src/connection';
import type { Target } from '../../src/prelude';
import { latestCode } from '../../bench/inbox';
import { startCluster, type Cluster, type ClusterOptions } from '.';

const servers = {
  devserver: { server: 'devserver' },
  cluster: { server: 'cluster' },
  'cluster-defaults': { server: 'cluster', dynamicConfigPath: null },
} satisfies Record<string, ClusterOptions>;
type ServerName = keyof typeof servers;

/** The benchmark's knobs, read like the configuration (`loadSection`). */
const clusterBenchEnv = envSection({
  windows: setting('BENCH_WINDOWS', wholeNumber(1, 100_000), 100),
  concurrency: setting('BENCH_CONCURRENCY', wholeNumber(1, 1_000), 10),
  servers: setting(
    'BENCH_SERVERS',
    list(z.array(z.enum(Object.keys(servers) as [ServerName, ...ServerName[]]))),
  ),
});

// Sequential numbers from a random start: unique in the run, so no flow meets an open window.
let nextNumber = randomInt(0, 5_000_000);
const nextTarget = (): Target => ({
  type: 'phone_number',
  value: `+3363${String(nextNumber++ % 10_000_000).padStart(7, '0')}`,
});

interface Samples {
  send: number[];
  check: number[];
  flow: number[];
}

/** One flow: send, read the code as the user would, check; throws unless the code is accepted. */
async function flow(cluster: Cluster, client: Client, into: Samples): Promise<void> {
  const options = verificationClientOptions(loadConfig(cluster.env));
  const target = nextTarget();
  const sendStarted = performance.now();
  const sent = await startVerification(client, { target }, options);
  const sendMs = since(sendStarted);
  if (sent.status !== 'success') throw new Error(`a first send was answered ${sent.status}`);
  const code = await latestCode(cluster.sandboxUrl, target.value);
  const checkStarted = performance.now();
  const checked = await checkCode(client, { target, code }, options);
  const checkMs = since(checkStarted);
  if (checked.status !== 'success') throw new Error(`the right code was answered ${checked.status}`);
  into.send.push(sendMs);
  into.check.push(checkMs);
  into.flow.push(sendMs + checkMs);
}

function line(server: ServerName, workers: number, concurrency: number, samples: Samples, wallMs: number) {
  const send = percentiles(samples.send);
  const check = percentiles(samples.check);
  const total = percentiles(samples.flow);
  return {
    scenario: 'cluster-bench',
    server,
    workers,
    concurrency,
    flows: samples.flow.length,
    flows_per_s: round1((samples.flow.length / wallMs) * 1000),
    flow_p50_ms: total.p50,
    flow_p99_ms: total.p99,
    send_p50_ms: send.p50,
    send_p99_ms: send.p99,
    check_p50_ms: check.p50,
    check_p99_ms: check.p99,
  };
}

async function measure(name: ServerName, windows: number, concurrency: number): Promise<void> {
  const cluster = await startCluster({ ...servers[name], services: 1, log: () => undefined });
  try {
    const config = loadConfig(cluster.env);
    const client = await connectClient(config.temporal, dataConverterFor(config.privacy.keyRing));
    try {
      console.log(
        JSON.stringify({
          scenario: 'cluster-start',
          server: name,
          ready_ms: cluster.startedInMs,
          eager_activities: /system\.enableActivityEagerExecution: on/.test(cluster.setupOutput),
        }),
      );
      const fresh = (): Samples => ({ send: [], check: [], flow: [] });
      // Warm-up: the first tasks pay for isolates, caches, JIT and connections.
      await pool(concurrency, concurrency, () => flow(cluster, client, fresh()));
      const sequential = fresh();
      const sequentialMs = await pool(windows, 1, () => flow(cluster, client, sequential));
      console.log(JSON.stringify(line(name, 2, 1, sequential, sequentialMs)));
      const two = fresh();
      const twoMs = await pool(windows, concurrency, () => flow(cluster, client, two));
      console.log(JSON.stringify(line(name, 2, concurrency, two, twoMs)));
      await cluster.workers[1]!.stop();
      const one = fresh();
      const oneMs = await pool(windows, concurrency, () => flow(cluster, client, one));
      console.log(JSON.stringify(line(name, 1, concurrency, one, oneMs)));
    } finally {
      await client.connection.close();
    }
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const knobs = loadSection(clusterBenchEnv);
  const { windows, concurrency } = knobs;
  const names = knobs.servers.length > 0 ? knobs.servers : (Object.keys(servers) as ServerName[]);
  // Ctrl-C: exiting runs the hook that kills every part's process group.
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  for (const name of names) await measure(name, windows, concurrency);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
