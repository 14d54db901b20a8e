/**
 * What loading some modules costs a fresh Node process: the time `require` takes and the modules it
 * loads. Each probe is a child process of its own, so nothing is cached from an earlier load.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What one fresh process paid to load the modules. */
export interface LoadCost {
  /** Wall time of the `require` calls, in ms. */
  ms: number;
  /** Files in `require.cache` afterwards. */
  modules: number;
  /** Their paths. */
  files: string[];
}

// Runs in the child: resolves each module from the working directory, then reports.
const probe = `
const { performance } = require('node:perf_hooks');
const paths = process.argv.slice(1).map((m) => require.resolve(m, { paths: [process.cwd()] }));
const started = performance.now();
for (const path of paths) require(path);
const ms = performance.now() - started;
const files = Object.keys(require.cache);
process.stdout.write(JSON.stringify({ ms, modules: files.length, files }));
`;

/** Loads `modules` (package names or paths, resolved from `cwd`) in a fresh process. */
export async function loadCost(modules: string[], cwd: string): Promise<LoadCost> {
  const { stdout } = await run(process.execPath, ['-e', probe, ...modules], { cwd, maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as LoadCost;
}
