/** Timing helpers of `npm run bench`. */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Runs `task` for 0..count-1, `concurrency` at a time; resolves with the wall time in ms. */
export async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
  return performance.now() - started;
}

/** Milliseconds since `t0` (a `performance.now()` reading). */
export const since = (t0: number): number => performance.now() - t0;

/** Rounds to one decimal, for printing. */
export const round1 = (x: number): number => Math.round(x * 10) / 10;

/** p50, p95 and p99 of durations in ms (nearest rank). */
export function percentiles(ms: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => round1(sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** Splits `total` into `parts` near-equal whole numbers. */
export function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** `list` rotated left by `by`: each round starts with another scenario, so none is always first. */
export function rotate<T>(list: T[], by: number): T[] {
  const k = by % Math.max(1, list.length);
  return [...list.slice(k), ...list.slice(0, k)];
}

/**
 * CPU time spent so far, in ms: this process's (every thread), and, when known, the dev server's and
 * the sandbox's (Prelude's stand-in, in a process of its own).
 */
export interface CpuReading {
  processMs: number;
  serverMs?: number;
  sandboxMs?: number;
}

/**
 * Reads this process's CPU time, and the dev server's and the sandbox's from /proc (Linux) when their
 * process IDs are known. `undefined` for those elsewhere, or once they have exited.
 */
export function readCpu(serverPid: number | undefined, sandboxPid?: number): CpuReading {
  const { user, system } = process.cpuUsage();
  return {
    processMs: (user + system) / 1000,
    serverMs: serverPid ? procCpuMs(serverPid) : undefined,
    sandboxMs: sandboxPid ? procCpuMs(sandboxPid) : undefined,
  };
}

/** The CPU time between two readings; another process's only when both have it. */
export function cpuBetween(before: CpuReading, after: CpuReading): CpuReading {
  const between = (from: number | undefined, to: number | undefined) =>
    from === undefined || to === undefined ? undefined : to - from;
  return {
    processMs: after.processMs - before.processMs,
    serverMs: between(before.serverMs, after.serverMs),
    sandboxMs: between(before.sandboxMs, after.sandboxMs),
  };
}

function procCpuMs(pid: number): number | undefined {
  return procStat(pid)?.cpuMs;
}

/** A process's group and the CPU time (ms) it has taken, from /proc; undefined once it is gone. */
function procStat(pid: number | string): { group: number; cpuMs: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces: the fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    // pgrp, field 5 of the whole line.
    group: Number(fields[2]),
    // utime and stime, fields 14 and 15, in clock ticks (100 a second on Linux).
    cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond,
  };
}

/** CPU time (ms) of a process group's leader and of the rest of the group, from /proc. */
export function groupCpuMs(group: number): { leaderMs: number; othersMs: number } {
  let leaderMs = 0;
  let othersMs = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat?.group !== group) continue;
    if (Number(entry) === group) leaderMs += stat.cpuMs;
    else othersMs += stat.cpuMs;
  }
  return { leaderMs, othersMs };
}

const clockTicksPerSecond = 100;
