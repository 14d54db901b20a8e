/**
 * `npm run bench:http`: verifications over HTTP against the stack `npm start` runs, started as a user
 * starts it (`node dist/src/cli.js start`, in a directory of its own): one process with the worker,
 * the HTTP service and the Prelude sandbox, and its Temporal dev server on a SQLite file. A flow is
 * `POST /verifications`, the code from the sandbox's inbox, `POST /verifications/check`; meanwhile the
 * sandbox posts its signed delivery webhooks to the service, as Prelude would.
 *
 * The baseline, in the same run against the same sandbox: the same flows straight on the sandbox's
 * Prelude API (create, inbox, check), what this machine does with no Temporal and no service.
 *
 * BENCH_HTTP_ONE (20) flows one at a time, then BENCH_HTTP_FLOWS (200) at BENCH_HTTP_CONCURRENCY (8),
 * each in two rounds taking turns with the baseline. Every flow has its own number, in its own block,
 * and its own `signals.ip`; the country's send guard budget is a high-volume app's (as `npm run bench`
 * sets it), so that no send is refused as a burst. Prints JSON lines: flows per second, the send's
 * and the check's p50 and p95, and the CPU each flow took in the stack's process and its dev server.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { envSection, setting, wholeNumber } from '../src/env';
import { freeListenPorts } from '../src/free-port';
import { packageRoot } from '../src/package-root';
import { loadSection } from '../temporal.config';
import { Part, untilPrinted } from '../tools/processes';
import { runBenchmark } from './harness';
import { latestCode } from './inbox';
import { groupCpuMs, percentiles, pool, round1 } from './measure';

/** The benchmark's knobs, read like the configuration (`loadSection`). */
const knobs = loadSection(
  envSection({
    one: setting('BENCH_HTTP_ONE', wholeNumber(1, 10_000), 20),
    flows: setting('BENCH_HTTP_FLOWS', wholeNumber(2, 100_000), 200),
    concurrency: setting('BENCH_HTTP_CONCURRENCY', wholeNumber(1, 1_000), 8),
  }),
);

/** One way to send a code and check it: through the stack, or straight on the sandbox. */
interface Way {
  name: 'http' | 'prelude_direct';
  send(number: string, ip: string): Promise<void>;
  check(number: string, code: string): Promise<void>;
}

interface Measured {
  send: number[];
  check: number[];
  wallMs: number;
  flows: number;
  cpu: { processMs: number; serverMs: number };
}

const answerSchema = z.looseObject({ status: z.string().optional(), code: z.string().optional() });

async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<z.infer<typeof answerSchema>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const answer = answerSchema.parse(await response.json());
  if (!response.ok) throw new Error(`${url} answered ${response.status} ${answer.code ?? ''}`);
  return answer;
}

runBenchmark(async (cleanups) => {
  const dir = mkdtempSync(join(tmpdir(), 'prelude-temporal-bench-http-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const [temporalPort, servicePort, sandboxPort] = (await freeListenPorts(3)) as [number, number, number];
  const serviceUrl = `http://127.0.0.1:${servicePort}`;
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const stack = new Part(
    {
      name: 'stack',
      command: process.execPath,
      args: [join(packageRoot(), 'dist', 'src', 'cli.js'), 'start'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
        PORT: String(servicePort),
        SANDBOX_PORT: String(sandboxPort),
        METRICS_PORT: '0',
        GUARD_COUNTRY_SENDS: '10000000',
        GUARD_COUNTRY_BURST: '1000000',
      },
      cwd: dir,
      logDir: dir,
      ready: (running, signal) => untilPrinted(running, 'Ctrl-C stops everything.', signal),
      readyTimeoutMs: 180_000,
    },
    (message) => console.error(message),
  );
  await stack.start(AbortSignal.timeout(180_000));
  cleanups.push(() => stack.stop());
  const group = stack.process!.pid;

  const expectSuccess = (way: string, status: string | undefined) => {
    if (status !== 'success') throw new Error(`${way}: the right code was answered ${status}`);
  };
  // The sandbox takes any bearer token, as the stack's worker sends one.
  const prelude = { authorization: 'Bearer bench' };
  const ways: Way[] = [
    {
      name: 'http',
      send: async (value, ip) => {
        await postJson(`${serviceUrl}/verifications`, {
          target: { type: 'phone_number', value },
          signals: { ip },
        });
      },
      check: async (value, code) =>
        expectSuccess(
          'http',
          (
            await postJson(`${serviceUrl}/verifications/check`, {
              target: { type: 'phone_number', value },
              code,
            })
          ).status,
        ),
    },
    {
      name: 'prelude_direct',
      send: async (value, ip) => {
        await postJson(
          `${sandboxUrl}/v2/verification`,
          { target: { type: 'phone_number', value }, signals: { ip } },
          prelude,
        );
      },
      check: async (value, code) =>
        expectSuccess(
          'prelude_direct',
          (
            await postJson(
              `${sandboxUrl}/v2/verification/check`,
              { target: { type: 'phone_number', value }, code },
              prelude,
            )
          ).status,
        ),
    },
  ];

  // French mobile numbers a block (1000 numbers) apart from a random start: unique in the run, spread
  // over ranges as real users are.
  let nextNumber = randomInt(0, 90_000_000);
  const nextFlow = () => {
    nextNumber = (nextNumber + 1_009) % 100_000_000;
    const ip = `10.${(nextNumber >> 16) & 255}.${(nextNumber >> 8) & 255}.${nextNumber & 255}`;
    return { number: `+336${String(nextNumber).padStart(8, '0')}`, ip };
  };

  const measured = new Map<string, Measured>();
  const record = (key: string) => {
    let entry = measured.get(key);
    if (!entry) {
      entry = { send: [], check: [], wallMs: 0, flows: 0, cpu: { processMs: 0, serverMs: 0 } };
      measured.set(key, entry);
    }
    return entry;
  };
  const run = async (way: Way, mode: 'sequential' | 'concurrent', flows: number, concurrency: number) => {
    const into = record(`${way.name}:${mode}`);
    const before = groupCpuMs(group);
    into.wallMs += await pool(flows, concurrency, async () => {
      const { number, ip } = nextFlow();
      let t0 = performance.now();
      await way.send(number, ip);
      into.send.push(performance.now() - t0);
      const code = await latestCode(sandboxUrl, number);
      t0 = performance.now();
      await way.check(number, code);
      into.check.push(performance.now() - t0);
    });
    const after = groupCpuMs(group);
    into.flows += flows;
    into.cpu.processMs += after.leaderMs - before.leaderMs;
    into.cpu.serverMs += after.othersMs - before.othersMs;
  };

  // Warm-up: the first sends start the guard shards and compile the hot paths.
  for (const way of ways) await run(way, 'sequential', 5, 1);
  measured.clear();
  for (let i = 0; i < knobs.one; i++) for (const way of ways) await run(way, 'sequential', 1, 1);
  const halves = [Math.ceil(knobs.flows / 2), Math.floor(knobs.flows / 2)];
  for (const [round, flows] of halves.entries()) {
    for (const way of round === 0 ? ways : [...ways].reverse()) {
      await run(way, 'concurrent', flows, knobs.concurrency);
    }
  }

  const lines: Record<string, Record<string, number | string>> = {};
  for (const [key, m] of measured) {
    const [way, mode] = key.split(':') as [string, string];
    const send = percentiles(m.send);
    const check = percentiles(m.check);
    const line = {
      scenario: way,
      mode,
      flows: m.flows,
      concurrency: mode === 'sequential' ? 1 : knobs.concurrency,
      flows_per_s: round1((m.flows * 1000) / m.wallMs),
      send_p50_ms: send.p50,
      send_p95_ms: send.p95,
      check_p50_ms: check.p50,
      check_p95_ms: check.p95,
      // The sandbox answers both ways inside the stack's process: its CPU is in the process's figure.
      cpu_ms_per_flow_process: round1(m.cpu.processMs / m.flows),
      cpu_ms_per_flow_devserver: round1(m.cpu.serverMs / m.flows),
    };
    lines[key] = line;
    console.log(JSON.stringify(line));
  }
  for (const mode of ['sequential', 'concurrent']) {
    const http = lines[`http:${mode}`]!;
    const direct = lines[`prelude_direct:${mode}`]!;
    const ratio = (field: string) => Math.round((Number(http[field]) / Number(direct[field])) * 1000) / 1000;
    console.log(
      JSON.stringify({
        scenario: 'ratio',
        mode,
        of: 'http',
        to: 'prelude_direct',
        flows_per_s: ratio('flows_per_s'),
        send_p50: ratio('send_p50_ms'),
        check_p50: ratio('check_p50_ms'),
      }),
    );
  }
});
