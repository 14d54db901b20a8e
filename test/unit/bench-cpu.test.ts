/**
 * The bench's CPU reading (`readCpu`, bench/measure.ts): the CPU per flow it prints is what bounds
 * the throughput on a small machine, so it must count another process's time as the kernel does.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuBetween, readCpu } from '../../bench/measure';

const linux = process.platform === 'linux';

describe('the bench CPU reading', () => {
  (linux ? it : it.skip)("counts a busy process's CPU time, and not an idle one's", async () => {
    // Each says when it is running: Node's own start-up is busy, and on a loaded machine an idle
    // child may still be starting a fixed while after its spawn.
    const busy = spawn(process.execPath, [
      '-e',
      'console.log("ready"); const end = Date.now() + 10_000; while (Date.now() < end);',
    ]);
    const idle = spawn(process.execPath, ['-e', 'setTimeout(() => undefined, 10_000); console.log("ready")']);
    try {
      await Promise.all([once(busy.stdout, 'data'), once(idle.stdout, 'data')]);
      // A margin for what Node still does once the script's first line has run.
      await sleep(100);
      const [busyBefore, idleBefore] = [readCpu(busy.pid), readCpu(idle.pid)];
      await sleep(700);
      const [busyAfter, idleAfter] = [readCpu(busy.pid), readCpu(idle.pid)];
      const busyMs = cpuBetween(busyBefore, busyAfter).serverMs!;
      // A loop that never yields: nearly all of the 700 ms (one core, shared with the suite).
      expect(busyMs).toBeGreaterThan(250);
      expect(busyMs).toBeLessThan(1_000);
      expect(cpuBetween(idleBefore, idleAfter).serverMs).toBeLessThan(50);
      // This process's own reading only grows.
      expect(cpuBetween(busyBefore, busyAfter).processMs).toBeGreaterThanOrEqual(0);
    } finally {
      busy.kill();
      idle.kill();
      await Promise.all([once(busy, 'exit'), once(idle, 'exit')]);
    }
  });

  it('reads no server time for an unknown process', () => {
    expect(readCpu(undefined).serverMs).toBeUndefined();
    // A process ID no process has (above the kernel's pid_max).
    expect(readCpu(2 ** 30).serverMs).toBeUndefined();
    expect(readCpu(undefined).processMs).toBeGreaterThan(0);
    // A span with one reading of the server missing has no server time, rather than a wrong one.
    const known = readCpu(process.pid);
    expect(known.serverMs).toBeGreaterThan(0);
    expect(cpuBetween(readCpu(undefined), known).serverMs).toBeUndefined();
  });

  it("reads the sandbox's time apart from the server's, when its process is known", () => {
    const both = readCpu(undefined, process.pid);
    expect(both.serverMs).toBeUndefined();
    expect(both.sandboxMs).toBeGreaterThan(0);
    expect(readCpu(undefined, 2 ** 30).sandboxMs).toBeUndefined();
    expect(cpuBetween(readCpu(undefined), both).sandboxMs).toBeUndefined();
    expect(cpuBetween(both, readCpu(undefined, process.pid)).sandboxMs).toBeGreaterThanOrEqual(0);
  });
});
