// Scratch probe (not committed): workflow-code CPU per replayed window, and where its promises come from.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promiseHooks } from 'node:v8';
import { performance } from 'node:perf_hooks';
import { Worker } from '@temporalio/worker';
import { dataConverterFor, parseKeyRing } from '../src/codec';

async function main() {
  const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'histories', '0.1.0');
  const file = process.argv[2] ?? 'local-verified-after-resend-and-wrong-code.json';
  const history = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const ring = parseKeyRing(readFileSync(join(dir, 'key-ring.txt'), 'utf8').trim());
  const n = Number(process.argv[3] ?? 200);
  const histories = Array.from({ length: n }, (_, i) => ({ workflowId: `probe-${i}`, history }));
  const options = {
    workflowsPath: require.resolve('../workflows'),
    dataConverter: dataConverterFor(ring),
    debugMode: process.env.DEBUG_MODE === '1',
  };
  let promises = 0;
  const sites = new Map<string, number>();
  const stop =
    process.env.COUNT === '1'
      ? promiseHooks.onInit(() => {
          promises++;
          if (process.env.SITES === '1') {
            const lines = new Error()
              .stack!.split('\n')
              .slice(2, 14)
              .map((l) => l.trim());
            if (!lines.some((l) => l.includes('workflow-bundle') || l.includes('evalmachine'))) return;
            const ours = lines
              .filter((l) => l.includes('workflow-bundle') || l.includes('evalmachine'))
              .slice(0, 3)
              .map((l) => l.replace(/\(.*workflow-bundle[^:]*:/, '(:'))
              .join(' < ');
            sites.set(ours, (sites.get(ours) ?? 0) + 1);
          }
        })
      : () => undefined;
  // Warm-up.
  for await (const r of Worker.runReplayHistories(options, histories.slice(0, 20)))
    if (r.error) throw r.error;
  promises = 0;
  sites.clear();
  Error.stackTraceLimit = 14;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for await (const r of Worker.runReplayHistories(options, histories)) if (r.error) throw r.error;
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  stop();
  console.log(
    JSON.stringify({
      file,
      n,
      wall_ms_per_window: (wall / n).toFixed(2),
      cpu_ms_per_window: ((cpu.user + cpu.system) / 1000 / n).toFixed(2),
      promises_per_window: (promises / n).toFixed(1),
    }),
  );
  if (process.env.SITES === '1') {
    let inWorkflow = 0;
    for (const c of sites.values()) inWorkflow += c;
    console.log('in workflow context per window', (inWorkflow / n).toFixed(1));
    for (const [s, c] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, 45))
      console.log((c / n).toFixed(1), s);
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
