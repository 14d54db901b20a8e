/**
 * `npm run bench`: what a verification costs through this connector, next to the same Prelude calls
 * made directly, measured in the same run against the same sandbox. Prints one JSON line per
 * measurement; compare `overhead_ms` and `throughput_ratio`, not absolute times, across machines.
 *
 * BENCH_WINDOWS (default 200) windows per scenario, BENCH_CONCURRENCY (default 20) at a time.
 * Uses TEMPORAL_ADDRESS when set, otherwise starts a headless dev server.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../temporal.config';
import { checkCode, startVerification, verificationClientOptions } from '../src/client';
import { connectClient } from '../src/connection';
import { startDevServer } from '../src/devserver';
import { PreludeClient } from '../src/prelude';
import { startSandbox } from '../src/sandbox';
import { createVerificationWorker } from '../src/worker';

const windows = Number(process.env.BENCH_WINDOWS ?? 200);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 20);

/** Runs `task` for 0..count-1, `concurrency` at a time; returns each run's duration in ms. */
async function measure(
  count: number,
  task: (i: number) => Promise<void>,
): Promise<{ ms: number[]; wallMs: number }> {
  const ms: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await task(i);
        ms.push(performance.now() - t0);
      }
    }),
  );
  return { ms, wallMs: performance.now() - started };
}

function summary(name: string, { ms, wallMs }: { ms: number[]; wallMs: number }) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) =>
    Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1));
  return {
    scenario: name,
    windows: ms.length,
    concurrency,
    p50_ms: at(0.5),
    p95_ms: at(0.95),
    windows_per_s: Number(((ms.length / wallMs) * 1000).toFixed(1)),
  };
}

const phone = () => `+3362${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;

async function main(): Promise<void> {
  const devServer = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ uiPort: false });
  const config = loadConfig({
    ...process.env,
    TEMPORAL_ADDRESS: devServer?.address ?? process.env.TEMPORAL_ADDRESS,
    SANDBOX_PORT: '0',
    SANDBOX_MIN_RETRY_DELAY_SECONDS: '0',
    SANDBOX_NUMBER_RATE_LIMIT: '0',
  });
  const sandbox = await startSandbox(config.sandbox);
  const prelude = new PreludeClient({ apiKey: 'bench', baseUrl: sandbox.url, timeoutMs: 10_000 });
  const taskQueue = `bench-${randomUUID()}`;
  const client = await connectClient(config.temporal);
  const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await createVerificationWorker({
    connection: workerConnection,
    namespace: config.temporal.namespace,
    taskQueue,
    client,
    prelude,
  });
  const running = worker.run();
  const options = { ...verificationClientOptions(config), taskQueue };
  options.policy = { ...options.policy, resendCooldownSeconds: 0 };

  try {
    // Warm-up: the first workflow tasks pay for the worker's isolate and caches.
    await measure(concurrency, async () => {
      await startVerification(client, { target: { type: 'phone_number', value: phone() } }, options);
    });

    const codes = async (to: string) => {
      const response = await fetch(`${sandbox.url}/sandbox/messages?to=${encodeURIComponent(to)}`);
      return ((await response.json()) as { messages: { code: string }[] }).messages[0]!.code;
    };

    const direct = summary(
      'prelude_direct_send_and_check',
      await measure(windows, async () => {
        const target = { type: 'phone_number' as const, value: phone() };
        await prelude.verification.create({ target });
        await prelude.verification.check({ target, code: await codes(target.value) });
      }),
    );
    console.log(JSON.stringify(direct));

    const durable = summary(
      'temporal_window_send_and_check',
      await measure(windows, async () => {
        const target = { type: 'phone_number' as const, value: phone() };
        await startVerification(client, { target }, options);
        const result = await checkCode(client, { target, code: await codes(target.value) }, options);
        if (result.status !== 'success') throw new Error(`unexpected check answer ${result.status}`);
      }),
    );
    console.log(JSON.stringify(durable));

    console.log(
      JSON.stringify({
        scenario: 'comparison',
        baseline: direct.scenario,
        overhead_ms: Number((durable.p50_ms - direct.p50_ms).toFixed(1)),
        throughput_ratio: Number((durable.windows_per_s / direct.windows_per_s).toFixed(3)),
      }),
    );
  } finally {
    worker.shutdown();
    await running;
    await workerConnection.close();
    await client.connection.close();
    await sandbox.stop();
    await devServer?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
