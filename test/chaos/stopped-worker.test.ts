/**
 * A worker stopped as a deploy stops it (`SIGTERM` to `npm run worker`'s process) while it holds a
 * check's call to Prelude, with the new worker already up. The SDK's default shutdown grace is 0:
 * the call was cancelled mid-way, Prelude carried it out all the same, and the new worker checked
 * the code a second time (a deploy every 6 s spent 3 checks twice in 60 flows:
 * `CHAOS_DEPLOY=1 SANDBOX_PROCESSING_MS=400 npm run chaos`). The worker now lets the calls it has
 * in flight finish before it exits (src/shutdown-grace.ts): Prelude is asked once. A second signal
 * is an operator who will not wait: the worker exits at once, and the call it cut is the next
 * worker's to settle.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkCode, getVerification, startVerification } from '../../src/client';
import { shutdownGraceMsFor } from '../../src/shutdown-grace';
import { runCli, waitForOutput, type CliProcess } from '../support/cli';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneTarget, workerProcessEnv, type TestStack } from '../support/stack';

/** Longer than any hold below; the worker's shutdown grace follows it (35 s). */
const preludeTimeoutMs = 30_000;

describe('a worker stopped by a deploy while it holds a check', () => {
  let stack: TestStack;
  const workers: CliProcess[] = [];

  beforeAll(async () => {
    // The check goes out as a regular activity whichever way the sends go; the proxy holds it.
    stack = await startStack({ withoutWorker: true, withProxy: true, callTimeoutMs: 90_000 });
    // The hold lasts as long as the new worker takes to start (seconds on a loaded machine): no
    // timeout may end the held call first, or the window would rightly check again.
    stack.options.calls = { ...stack.options.calls, attemptTimeoutMs: preludeTimeoutMs + 1_000 };
  });
  afterAll(async () => {
    stack?.proxy?.release();
    await Promise.all(workers.map((worker) => worker.stop()));
    await stack?.stop();
  });

  const startWorker = async () => {
    const worker = runCli('worker', mkdtempSync(join(tmpdir(), 'stopped-worker-')), {
      ...workerProcessEnv(stack),
      PRELUDE_BASE_URL: stack.proxy!.url,
      PRELUDE_TIMEOUT_MS: String(preludeTimeoutMs),
      // The configuration holds the helpers' deadline to a send's worst case with that timeout.
      VERIFY_CALL_TIMEOUT_MS: '200000',
      METRICS_PORT: '0',
    });
    workers.push(worker);
    await waitForOutput(worker, 'worker polling');
    return worker;
  };

  /**
   * A user's check in flight on the only worker, held at the proxy, and a new worker up beside it:
   * the deploy, up to the old worker's signal.
   */
  const deployWhileACheckIsHeld = async () => {
    const old = await startWorker();
    const target = uniquePhoneTarget();
    expect(await startVerification(stack.client, { target }, stack.options)).toMatchObject({
      status: 'success',
    });
    const code = await stack.latestCode(target.value);
    const proxy = stack.proxy!;
    proxy.held = ['/v2/verification/check'];
    // This target's only: the proxy keeps every test's calls.
    const checksAsked = () =>
      proxy.calls.filter(
        (call) => call.path === '/v2/verification/check' && call.body?.target?.value === target.value,
      ).length;
    const checking = checkCode(stack.client, { target, code }, stack.options);
    await eventually(() => checksAsked() === 1, {
      description: "the old worker's check held at the proxy",
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    await startWorker();
    return { old, target, checking, checksAsked };
  };

  it('lets the check finish: Prelude checks the code once, and the user is verified', async () => {
    const proxy = stack.proxy!;
    const { old, target, checking, checksAsked } = await deployWhileACheckIsHeld();
    const stoppedAt = Date.now();
    old.signal('SIGTERM');
    await sleep(1_000);
    // Prelude answers the call it has had for a second.
    proxy.release();

    expect(await checking).toMatchObject({ status: 'success' });
    expect(await old.exited).toBe(0);
    expect(old.output()).toContain('SIGTERM: stopping');
    // It waited for the call, not for its whole grace.
    expect(Date.now() - stoppedAt).toBeLessThan(shutdownGraceMsFor(preludeTimeoutMs) / 2);
    // One check asked of Prelude, and the window counts that one.
    expect(checksAsked()).toBe(1);
    expect(await stack.appliedCalls(target.value, 'verification.check')).toHaveLength(1);
    expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
      outcome: 'verified',
      checksUsed: 1,
    });
  }, 90_000);

  it('exits at once on a second signal, and the next worker still verifies the user', async () => {
    // The check must go to the worker this test stops: the earlier test's are stopped first.
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
    const { old, checking } = await deployWhileACheckIsHeld();
    old.signal('SIGTERM');
    await sleep(500);
    // An operator who will not wait for the call in flight.
    const againAt = Date.now();
    old.signal('SIGTERM');
    // 128 + SIGTERM's 15, as a shell reports a process that a SIGTERM ended.
    expect(await old.exited).toBe(143);
    expect(Date.now() - againAt).toBeLessThan(3_000);
    expect(old.output()).toContain('SIGTERM again: exiting now');
    stack.proxy!.release();
    // The call was cut: its fate unknown, the window checks again on the next worker, and reads
    // Prelude's answer to the repeat as its lifecycle says (the first check verified the code).
    expect(await checking).toMatchObject({ status: 'success' });
  }, 90_000);
});
