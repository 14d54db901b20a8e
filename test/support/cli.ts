/**
 * The product's own entry points (`node dist/src/cli.js …`, what `npm start`, `npm run worker` and
 * `npm run server` run) started as a user starts them: a child process in its own process group,
 * with its whole output captured. The test setup builds `dist/` first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../src/devserver';
import { eventually, StopWaiting } from './eventually';

const cliPath = join(__dirname, '..', '..', 'dist', 'src', 'cli.js');

/** A running CLI command. */
export interface CliProcess {
  /** Its process ID (a worker's Temporal identity is `<pid>@<host>`). */
  pid: number;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number | null>;
  /** SIGINT (as Ctrl-C), then SIGKILL to its process group if it has not exited in 20 s. */
  stop(): Promise<number | null>;
  /** Sends `signal` to its process group (e.g. `SIGSTOP` and `SIGCONT`, to pause it and resume it). */
  signal(signal: NodeJS.Signals): void;
}

/** Runs `prelude-temporal <command>` in `cwd` with exactly `env` (plus PATH and HOME). */
export function runCli(command: string, cwd: string, env: Record<string, string>): CliProcess {
  return runNode([cliPath, command], cwd, env);
}

/** Runs `node <args>` as {@link runCli} does: its own process group, with exactly `env` (plus PATH and HOME). */
export function runNode(args: string[], cwd: string, env: Record<string, string>): CliProcess {
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    pid: child.pid!,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid!, 'SIGINT');
        const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
    signal: (signal) => process.kill(-child.pid!, signal),
  };
}

/** Waits until the process printed `text`, failing with its output if it exits or 90 s pass first. */
export async function waitForOutput(cli: CliProcess, text: string, timeoutMs = 90_000): Promise<void> {
  let exited = false;
  void cli.exited.then(() => (exited = true));
  try {
    await eventually(
      () => {
        if (cli.output().includes(text)) return true;
        if (exited) throw new StopWaiting('it exited');
        return false;
      },
      { description: `the output "${text}"`, timeoutMs, intervalMs: 100 },
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${reason}; it printed:\n${cli.output()}`, { cause: error });
  }
}

/** Free ports for a whole local stack, so it never meets another one (or a user's) on 7233. */
export async function stackPorts(): Promise<{
  TEMPORAL_ADDRESS: string;
  PORT: string;
  SANDBOX_PORT: string;
}> {
  return {
    TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    PORT: String(await freePort()),
    SANDBOX_PORT: String(await freePort()),
  };
}
