/**
 * The parts of a chaos run as separate processes, each the leader of its own process group, so that
 * a kill (`SIGKILL` to the group) takes it down as a crash would and nothing it started survives it.
 * A {@link Part} restarts its process on demand and, like a process manager, after an exit nobody
 * asked for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** How to start one part. */
export interface PartSpec {
  /** Short name, used in logs and file names (`worker`, `service`, …). */
  name: string;
  command: string;
  args: string[];
  /** The whole environment of the process (nothing is inherited). */
  env: Record<string, string>;
  cwd: string;
  /** Directory the process's output is appended to, one file per start. */
  logDir: string;
  /** Resolves once the freshly started process is ready to serve. */
  ready(process: RunningProcess, signal: AbortSignal): Promise<void>;
  /** How long `ready` may take; default 60 s. */
  readyTimeoutMs?: number;
}

/** One started process. */
export interface RunningProcess {
  pid: number;
  /** Whether `text` appeared in its output since it started. */
  printed(text: string): boolean;
  /** The last few kilobytes of its output. */
  tail(): string;
  /** Resolves when it has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

const tailBytes = 16_384;

/** Every process group started and not yet seen gone: killed on the way out, whatever happens. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of liveGroups) killGroup(pid, 'SIGKILL');
  });
}

/** Sends `signal` to a whole process group; a group already gone is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Whether any process of the group is still alive. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function startProcess(spec: PartSpec, log: WriteStream): RunningProcess {
  installExitHook();
  const child: ChildProcess = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  // A failed spawn (e.g. a missing binary) has no pid; its error event must not crash the run.
  child.on('error', (error) => log.write(`${spec.name}: ${error.message}\n`));
  if (child.pid === undefined) throw new Error(`${spec.name}: could not start ${spec.command}`);
  const pid = child.pid;
  liveGroups.add(pid);
  let tail = '';
  // Ready lines are printed once, early: each is looked for as output arrives, so it stays found
  // after the tail has moved on.
  const watched = new Map<string, boolean>();
  const keep = (chunk: Buffer) => {
    log.write(chunk);
    tail = (tail + chunk.toString()).slice(-tailBytes);
    for (const [text, found] of watched) if (!found && tail.includes(text)) watched.set(text, true);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  return {
    pid,
    printed(text) {
      if (!watched.get(text)) watched.set(text, tail.includes(text));
      return watched.get(text)!;
    },
    tail: () => tail,
    exited,
    hasExited: () => done,
  };
}

/** Waits until `process` printed `text`, failing if it exits first. */
export async function untilPrinted(
  process: RunningProcess,
  text: string,
  signal: AbortSignal,
): Promise<void> {
  while (!process.printed(text)) {
    if (process.hasExited()) throw new Error(`exited before printing "${text}"`);
    signal.throwIfAborted();
    await sleep(50);
  }
}

/** Counts of what happened to a part. */
export interface PartStats {
  starts: number;
  /** Kills the chaos run asked for. */
  kills: number;
  /** Freezes the chaos run asked for (see {@link Part.freeze}). */
  freezes: number;
  /** Rolling replacements the chaos run asked for (see {@link Part.replace}). */
  replacements: number;
  /** Exits nobody asked for (each followed by a restart). */
  unexpectedExits: number;
}

/** A supervised part: started, killed and restarted by the chaos run, restarted after a crash. */
export class Part {
  readonly stats: PartStats = { starts: 0, kills: 0, freezes: 0, replacements: 0, unexpectedExits: 0 };
  #current: RunningProcess | undefined;
  #expectExit = false;
  #stopped = false;
  #restarting: Promise<void> | undefined;
  readonly #logs: WriteStream;

  constructor(
    readonly spec: PartSpec,
    private readonly onEvent: (message: string) => void,
  ) {
    this.#logs = createWriteStream(join(spec.logDir, `${spec.name}.log`), { flags: 'a' });
  }

  /** The running process, if any. */
  get process(): RunningProcess | undefined {
    return this.#current;
  }

  /** Starts the process and waits until it is ready. */
  async start(signal: AbortSignal): Promise<void> {
    this.#expectExit = false;
    this.#logs.write(`\n=== start ${this.stats.starts + 1} at ${new Date().toISOString()} ===\n`);
    const running = startProcess(this.spec, this.#logs);
    this.#current = running;
    this.stats.starts += 1;
    void running.exited.then(({ code, signal: by }) => {
      if (!groupAlive(running.pid)) liveGroups.delete(running.pid);
      if (this.#current !== running || this.#expectExit || this.#stopped) return;
      this.stats.unexpectedExits += 1;
      this.onEvent(`${this.spec.name} exited unexpectedly (code ${code}, signal ${by}); restarting it`);
      this.#restarting = this.start(signal).catch((error: unknown) =>
        this.onEvent(`${this.spec.name} did not come back: ${(error as Error).message}`),
      );
    });
    const timeout = AbortSignal.timeout(this.spec.readyTimeoutMs ?? 60_000);
    try {
      await this.spec.ready(running, AbortSignal.any([signal, timeout]));
    } catch (error) {
      throw new Error(
        `${this.spec.name} did not get ready: ${(error as Error).message}\n--- its output ---\n` +
          running.tail().split('\n').slice(-30).join('\n'),
        { cause: error },
      );
    }
  }

  /** `SIGKILL` to the process group, as a crash or an OOM kill; resolves once it is gone. */
  async kill(): Promise<void> {
    await this.#restarting;
    const running = this.#current;
    if (!running) return;
    this.#expectExit = true;
    this.stats.kills += 1;
    killGroup(running.pid, 'SIGKILL');
    await running.exited;
    await untilGroupGone(running.pid);
  }

  /**
   * `SIGSTOP` to the process group, as a VM paused or a container starved of CPU: the process holds
   * its connections and its work in flight, and does nothing. It is no longer the part's process
   * (start a replacement, as a supervisor whose health check failed would); the answer resumes it,
   * so that it carries on what it was doing (late), and kills it.
   */
  async freeze(): Promise<FrozenProcess> {
    await this.#restarting;
    const running = this.#current;
    if (!running) throw new Error(`${this.spec.name} is not running`);
    this.#current = undefined;
    this.stats.freezes += 1;
    killGroup(running.pid, 'SIGSTOP');
    return {
      pid: running.pid,
      resume: () => killGroup(running.pid, 'SIGCONT'),
      kill: async () => {
        killGroup(running.pid, 'SIGKILL');
        await running.exited;
        await untilGroupGone(running.pid);
      },
    };
  }

  /**
   * A rolling deploy's step, as an orchestrator makes it: a new process is started and ready, then
   * the old one gets `SIGTERM` to finish its work in flight and exit, and `SIGKILL` if it is still
   * there `graceMs` later. Resolves once the old one is gone, with how long it took and whether it
   * had to be killed (a crash, then, not a deploy).
   */
  async replace(signal: AbortSignal, graceMs: number): Promise<Replacement> {
    await this.#restarting;
    const old = this.#current;
    if (!old) throw new Error(`${this.spec.name} is not running`);
    this.stats.replacements += 1;
    // No longer the part's process: its exit is the one asked for, not a crash to restart from.
    this.#current = undefined;
    try {
      await this.start(signal);
    } catch (error) {
      // A new process that never got ready leaves the old one serving, as an orchestrator does.
      this.#current = old;
      throw error;
    }
    const terminatedAt = Date.now();
    killGroup(old.pid, 'SIGTERM');
    let killedAt: number | undefined;
    const timer = setTimeout(() => {
      killedAt = Date.now();
      killGroup(old.pid, 'SIGKILL');
    }, graceMs);
    const { code } = await old.exited;
    clearTimeout(timer);
    if (groupAlive(old.pid)) killGroup(old.pid, 'SIGKILL');
    await untilGroupGone(old.pid);
    return { terminatedAt, exitedAt: Date.now(), exitCode: code, ...(killedAt ? { killedAt } : {}) };
  }

  /** Stops for good: `SIGINT` (as Ctrl-C), then `SIGKILL` to the group after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopped = true;
    this.#expectExit = true;
    await this.#restarting?.catch(() => undefined);
    const running = this.#current;
    if (running && !running.hasExited()) {
      killGroup(running.pid, 'SIGINT');
      const timer = setTimeout(() => killGroup(running.pid, 'SIGKILL'), graceMs);
      await running.exited;
      clearTimeout(timer);
    }
    if (running) {
      // Anything the leader left behind in its group goes too.
      if (groupAlive(running.pid)) killGroup(running.pid, 'SIGKILL');
      await untilGroupGone(running.pid);
    }
    await new Promise<void>((resolve) => this.#logs.end(resolve));
  }
}

/** How the old process of a {@link Part.replace} went. */
export interface Replacement {
  /** When it was sent `SIGTERM` (`Date.now()`). */
  terminatedAt: number;
  /** When it was gone. */
  exitedAt: number;
  /** Its exit code (null when a signal ended it). */
  exitCode: number | null;
  /** When it was sent `SIGKILL`, having not exited within the grace time. */
  killedAt?: number;
}

/** A process taken out of its part by {@link Part.freeze}, stopped until resumed. */
export interface FrozenProcess {
  pid: number;
  /** `SIGCONT` to its group: it carries on where it stopped. */
  resume(): void;
  /** `SIGKILL` to its group; resolves once it is gone. */
  kill(): Promise<void>;
}

async function untilGroupGone(pid: number): Promise<void> {
  for (let i = 0; i < 100 && groupAlive(pid); i += 1) await sleep(20);
  if (!groupAlive(pid)) liveGroups.delete(pid);
}
