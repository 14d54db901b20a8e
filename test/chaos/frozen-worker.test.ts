/**
 * A worker frozen while Temporal hands it a window's send, as a paused VM or a container starved of
 * CPU: `npm run worker`'s own process gets `SIGSTOP` with its polls open, and is the only worker when
 * the user asks for a code, so the window's first task goes to it. Another worker takes the task over
 * once it times out, the code goes out, the user is verified, and only then does the frozen worker
 * resume, holding the task it was handed. It must not send a code for it (activities/stall-fence.ts):
 * before the fence, it did, to a user already verified (`CHAOS_FREEZE_MS` chaos runs: 4 of 60).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkCode, startVerification, windowId as windowIdOf } from '../../src/client';
import { runCli, waitForOutput, type CliProcess } from '../support/cli';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneTarget, workerProcessEnv, type TestStack } from '../support/stack';

describe('a worker frozen while it held a send', () => {
  let stack: TestStack;
  const workers: CliProcess[] = [];

  beforeAll(async () => {
    // The send guards' shard would be the frozen worker's first task, and not the window's.
    stack = await startStack({ withoutWorker: true, env: { GUARD_MODE: 'off' } });
  });
  afterAll(async () => {
    for (const worker of workers) worker.signal('SIGCONT');
    await Promise.all(workers.map((worker) => worker.stop()));
    await stack?.stop();
  });

  const startWorker = async () => {
    const worker = runCli('worker', mkdtempSync(join(tmpdir(), 'frozen-worker-')), {
      ...workerProcessEnv(stack),
      GUARD_MODE: 'off',
    });
    workers.push(worker);
    await waitForOutput(worker, 'worker polling');
    return worker;
  };

  it('sends no code for it once it resumes, after the user was verified', async () => {
    const frozen = await startWorker();
    // Its polls reach the server.
    await sleep(1_000);
    frozen.signal('SIGSTOP');
    const target = uniquePhoneTarget();
    const sending = startVerification(stack.client, { target }, stack.options);
    // Temporal hands the window's first task to the only poller, the frozen worker, as its history says.
    const windowHandle = stack.client.workflow.getHandle(windowIdOf(target, stack.options.idKey));
    await eventually(
      async () => {
        const { events } = await windowHandle.fetchHistory().catch(() => ({ events: [] }));
        return events?.some((event) =>
          event.workflowTaskStartedEventAttributes?.identity?.startsWith(`${frozen.pid}@`),
        );
      },
      {
        description: "the window's first task handed to the frozen worker",
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    await startWorker();
    // The other worker takes the task over once it timed out on the frozen one.
    expect(await sending).toMatchObject({ status: 'success' });
    const code = await stack.latestCode(target.value);
    expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
      status: 'success',
    });

    frozen.signal('SIGCONT');
    // The resumed worker runs the task it was handed: it either says it made no call for it, or
    // sends a code nobody asked for.
    const codesSent = async () => (await stack.appliedCalls(target.value, 'verification.create')).length;
    await eventually(async () => frozen.output().includes('this worker stalled') || (await codesSent()) > 1, {
      description: 'the resumed worker acting on the task it held',
      timeoutMs: 15_000,
      intervalMs: 100,
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\nthe frozen worker's output:\n${frozen.output()}`, { cause: error });
    });
    await sleep(1_000);
    expect(await codesSent()).toBe(1);
    expect(frozen.output()).toContain('a call for a task from before the stall was not made');
  }, 90_000);
});
