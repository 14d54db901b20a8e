/**
 * The project on the cluster, as in production: `prelude-temporal setup` for the namespace and the
 * search attributes, then the product's own entry points (`node dist/src/cli.js …`) as separate
 * processes — the Prelude sandbox standing in for Prelude, workers, and HTTP services on ports of
 * their own — all with the same keys.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { untilPrinted, type PartSpec } from '../processes';

const run = promisify(execFile);

/** What every part of the project reads (see README "Configuration"). */
export type ProjectEnv = Record<string, string>;

/** The built CLI every part runs. */
export function cliPath(root: string): string {
  return join(root, 'dist', 'src', 'cli.js');
}

/**
 * `prelude-temporal setup --create-namespace` against the cluster: resolves with what it printed,
 * fails with its output when it exits non-zero.
 */
export async function runSetup(root: string, env: ProjectEnv): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [cliPath(root), 'setup', '--create-namespace'], {
      env,
      timeout: 120_000,
    });
    return stdout.trim();
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`prelude-temporal setup failed:\n${stdout}${stderr}`, { cause: error });
  }
}

/** A project part started through the CLI, ready once it printed `readyLine`. */
export function projectPart(
  name: string,
  command: 'sandbox' | 'worker' | 'server',
  readyLine: string,
  where: { root: string; env: ProjectEnv; runDir: string; logDir: string },
): PartSpec {
  return {
    name,
    command: process.execPath,
    args: [cliPath(where.root), command],
    env: where.env,
    cwd: where.runDir,
    logDir: where.logDir,
    ready: (process, signal) => untilPrinted(process, readyLine, signal),
    readyTimeoutMs: 90_000,
  };
}
