/**
 * `npm run bench:load`: what loading the package root (`prelude-temporal`, the backend helpers) costs
 * a fresh process, next to loading `@temporalio/client` + zod, which any backend using the helpers
 * loads anyway. Each sample is a new process, the two alternate, LOAD_BENCH_RUNS (default 9) of each;
 * the medians and their ratio (goal: at most 1.3) print as JSON lines.
 */
import { join } from 'node:path';
import { loadCost, type LoadCost } from './load-probe';
import { percentiles } from './measure';

const root = join(__dirname, '..', '..');
const scenarios: Record<string, string[]> = {
  'prelude-temporal': [join(root, 'dist', 'src', 'index.js')],
  '@temporalio/client + zod': ['@temporalio/client', 'zod'],
};

async function main(): Promise<void> {
  const runs = Number(process.env.LOAD_BENCH_RUNS ?? 9);
  const samples: Record<string, LoadCost[]> = Object.fromEntries(
    Object.keys(scenarios).map((name) => [name, []]),
  );
  for (let i = 0; i < runs; i++) {
    for (const [name, modules] of Object.entries(scenarios))
      samples[name]!.push(await loadCost(modules, root));
  }
  const medians: Record<string, number> = {};
  for (const [name, costs] of Object.entries(samples)) {
    medians[name] = percentiles(costs.map((cost) => cost.ms)).p50;
    const modules = costs[0]!.modules;
    console.log(JSON.stringify({ scenario: name, runs, medianMs: medians[name], modules }));
  }
  const ratio = Math.round((medians['prelude-temporal']! / medians['@temporalio/client + zod']!) * 100) / 100;
  console.log(
    JSON.stringify({
      scenario: 'ratio',
      of: 'prelude-temporal / @temporalio/client + zod',
      ratio,
      goal: 1.3,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
