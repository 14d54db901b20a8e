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
  (linux ? it : it.skip)(
    "counts a busy process's CPU time as the process itself does, and not an idle one's",
    async () => {
      // The busy child spins only when asked, for a given amount of its own CPU time, and answers
      // what it used by its own count; between requests it is idle. So the reads of /proc around a
      // request see the same work the child counts, however late this process gets to read them on
      // a loaded machine (a child that spun all along was also counted while this one waited).
      const busy = spawn(
        process.execPath,
        [
          '-e',
          `const used = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };
         process.on('message', (ms) => { const start = used(); while (used() - start < ms); process.send(used() - start); });
         process.send('ready');`,
        ],
        { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
      );
      const idle = spawn(process.execPath, [
        '-e',
        'setTimeout(() => undefined, 10_000); console.log("ready")',
      ]);
      const spinFor = async (ms: number): Promise<number> => {
        const answer = once(busy, 'message');
        busy.send(ms);
        return (await answer)[0] as number;
      };
      try {
        await Promise.all([once(busy, 'message'), once(idle.stdout, 'data')]);
        // A margin for what Node still does once the script's first line has run.
        await sleep(100);
        const idleBefore = readCpu(idle.pid);
        const busyBefore = readCpu(busy.pid);
        const ownMs = await spinFor(300);
        const busyAfter = readCpu(busy.pid);
        await sleep(200);
        const idleAfter = readCpu(idle.pid);
        const busyMs = cpuBetween(busyBefore, busyAfter).serverMs!;
        expect(ownMs).toBeGreaterThanOrEqual(300);
        // The kernel's ticks (10 ms) and the child's handling of the two messages: a few ticks apart.
        expect(Math.abs(busyMs - ownMs)).toBeLessThan(40);
        expect(cpuBetween(idleBefore, idleAfter).serverMs).toBeLessThan(50);
        // This process's own reading only grows.
        expect(cpuBetween(busyBefore, busyAfter).processMs).toBeGreaterThanOrEqual(0);
      } finally {
        busy.kill();
        idle.kill();
        await Promise.all([once(busy, 'exit'), once(idle, 'exit')]);
      }
    },
  );

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
