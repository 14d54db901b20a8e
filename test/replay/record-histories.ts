/**
 * Records the workflow histories the replay test checks new workflow code against
 * (`npm run histories:record`), for the package's version as package.json states it. Each scenario
 * runs on the real dev server and the sandbox, with both ways of calling Prelude (`local` and
 * `remote` activities), encrypted as in production with the fixtures' own key ring, and its history
 * is written to test/fixtures/histories/<version>/<mode>-<scenario>.json. Recorded once per release:
 * earlier releases' folders stay, as the histories of windows started by earlier code, which the
 * current code must still replay (a behaviour change is a `patched()` branch). Never re-record a
 * released version to make a failing replay pass. A scenario added after a release (to show that a
 * `patched()` branch replays the release's runs) is recorded into the release's folder by the
 * release's own code, alone: RECORD_SCENARIOS=<name>[,<name>] records only those and leaves the other
 * histories as they are.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import {
  cancelVerification,
  checkCode,
  VerificationError,
  getVerification,
  notificationResult,
  startNotification,
  startVerification,
  windowId,
} from '../../src/client';
import { parseKeyRing } from '../../src/codec';
import { resetCountryGuard, setCountryBudget } from '../../src/guards/admin';
import { guardShardOf } from '../../src/guards/check';
import { returnAdmissionLeases } from '../../src/guards/leases';
import { packageRoot, startDevServer } from '../../src/devserver';
import { writeWorkflowBundle } from '../../src/worker';
import { targetLimitsIdOf } from '../../workflows/messages';
import { startStack, uniquePhoneNumber, uniquePhoneTarget, type TestStack } from '../support/stack';

const undeliverable = '+33699999002';
const suspicious = '+33699999003';
const historiesDir = join(packageRoot(), 'test', 'fixtures', 'histories');

type Scenario = (stack: TestStack) => Promise<string>;

const scenarios: Record<string, Scenario> = {
  async 'verified-after-resend-and-wrong-code'(stack) {
    const target = uniquePhoneTarget();
    const policy = { watchFeedback: true, successTemplateId: 'template_sandbox_verified' };
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    await startVerification(stack.client, { target }, stack.options);
    await checkCode(stack.client, { target, code: '000000' }, stack.options);
    await checkCode(stack.client, { target, code: await stack.latestCode(target.value) }, stack.options);
    return sent.windowId;
  },
  async 'max-checks'(stack) {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target, policy: { maxChecks: 2 } }, stack.options);
    await checkCode(stack.client, { target, code: '000000' }, stack.options);
    await checkCode(stack.client, { target, code: '000001' }, stack.options);
    return sent.windowId;
  },
  async 'canceled-after-delivery-reports'(stack) {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, stack.options);
    await until(async () => {
      const state = await getVerification(stack.client, target, stack.options);
      return state.attempts[0]?.deliveryStatus === 'delivered';
    });
    await cancelVerification(stack.client, target, stack.options);
    return sent.windowId;
  },
  async expired(stack) {
    const target = uniquePhoneTarget();
    const sent = await startVerification(
      stack.client,
      { target, policy: { windowSeconds: 2 } },
      stack.options,
    );
    return sent.windowId;
  },
  async 'fallback-after-undeliverable'(stack) {
    const target = { type: 'phone_number' as const, value: undeliverable };
    const policy = { windowSeconds: 4, maxSends: 2, fallbackChannels: ['sms' as const, 'whatsapp' as const] };
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    return sent.windowId;
  },
  async 'fallback-after-lost-answer'(stack) {
    // A fallback send (the first code not delivered within 2 s) whose first attempt is applied and
    // its answer lost, and whose retry is answered: two codes. Code from 0.1.0 counted one, and with a
    // send left fell back again 2 s later; later code counts both, which uses the window's last send
    // (patched('count-lost-fallback-sends')). The window then expires.
    const target = uniquePhoneTarget();
    const policy = {
      windowSeconds: 6,
      maxSends: 3,
      fallbackChannels: ['sms' as const, 'whatsapp' as const, 'voice' as const],
      deliveryTimeoutSeconds: 2,
    };
    await stack.configureSandbox({ deliveryDelayMs: 60_000, minRetryDelaySeconds: 0 });
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 1 } });
    return afterItCloses(stack, sent.windowId);
  },
  async 'blocked-by-fraud-check'(stack) {
    const target = { type: 'phone_number' as const, value: suspicious };
    const sent = await startVerification(
      stack.client,
      { target, policy: { fraudMode: 'enforce' } },
      stack.options,
    );
    return sent.windowId;
  },
  async 'rate-limited'(stack) {
    const target = uniquePhoneTarget();
    const options = { ...stack.options, limits: { maxWindows: 1, maxSends: 1, periodSeconds: 3 } };
    const first = await startVerification(stack.client, { target }, options);
    await cancelVerification(stack.client, target, options);
    await startVerification(stack.client, { target }, options).catch(() => undefined);
    return first.windowId;
  },
  async 'wrong-code-with-lost-answers'(stack) {
    // Two answers to a wrong code lost, each attempt applied: Prelude counted three checks. Code from
    // 0.1.0 counted two and left the window open; later code counts three, which closes a window of
    // three checks (patched('count-each-lost-check')).
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target, policy: { maxChecks: 3 } }, stack.options);
    await stack.configureSandbox({ dropNextAnswers: { 'verification.check': 2 } });
    await checkCode(stack.client, { target, code: '000000' }, stack.options);
    const code = await stack.latestCode(target.value);
    await checkCode(stack.client, { target, code }, stack.options).catch(() => undefined);
    return sent.windowId;
  },
  async 'last-check-lost'(stack) {
    // A wrong code spends the first of two checks; the right code's every answer is lost. Code from
    // 0.1.0 spent the last check on it and closed the window `max_checks`; later code keeps it for
    // the retry, which verifies (patched('keep-last-check-for-retry')).
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target, policy: { maxChecks: 2 } }, stack.options);
    await checkCode(stack.client, { target, code: '000000' }, stack.options);
    await stack.configureSandbox({ dropNextAnswers: { 'verification.check': 3 } });
    const code = await stack.latestCode(target.value);
    await checkCode(stack.client, { target, code }, stack.options).catch(() => undefined);
    await checkCode(stack.client, { target, code }, stack.options).catch(() => undefined);
    return sent.windowId;
  },
  async 'wrong-code-answered-after-lost-attempt'(stack) {
    // A window of two checks: a wrong code's first answer lost, its retry answered `failure`. Code
    // from 0.1.0 counted both and closed the window `max_checks`; later code keeps the last check for
    // Prelude's word (patched('keep-last-check-for-retry')), and the right code verifies.
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target, policy: { maxChecks: 2 } }, stack.options);
    await stack.configureSandbox({ dropNextAnswers: { 'verification.check': 1 } });
    await checkCode(stack.client, { target, code: '000000' }, stack.options);
    return checkTheLatestCode(stack, target, sent.windowId);
  },
  async 'first-send-with-lost-answers'(stack) {
    // Every answer of a first send lost: its first attempt sent a code, the two others met Prelude's
    // resend delay. Code from 0.1.0 closed the window `failed`; later code keeps it open with the send
    // counted, and the code verifies in it (patched('count-lost-send')).
    const target = uniquePhoneTarget();
    await stack.configureSandbox({
      minRetryDelaySeconds: 60,
      dropNextAnswers: { 'verification.create': 3 },
    });
    await startVerification(stack.client, { target }, stack.options).catch(() => undefined);
    return checkTheLatestCode(stack, target, windowId(target, stack.options.idKey));
  },
  async 'sends-answered-retry-after-lost-answers'(stack) {
    // No resend delay at Prelude. A first send loses two answers, then is answered `retry`: three
    // codes went out. A resend loses one, then is answered `retry`: two more. Code from 0.1.0 counted
    // two and one; later code counts three and two (patched('count-each-lost-send')).
    const target = uniquePhoneTarget();
    const policy = { resendCooldownSeconds: 0 };
    await stack.configureSandbox({
      minRetryDelaySeconds: 0,
      dropNextAnswers: { 'verification.create': 2 },
    });
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 1 } });
    await startVerification(stack.client, { target }, stack.options).catch(() => undefined);
    return checkTheLatestCode(stack, target, sent.windowId);
  },
  async 'first-send-full-after-lost-answers'(stack) {
    // Prelude's window takes two attempts and resends at once. A first send's two attempts are
    // applied and their answers lost; the third meets the full window. Code from 0.1.0 answered 429
    // too_many_attempts and closed the window `failed`; later code counts the two codes and answers
    // the send as sent (patched('full-after-lost-sends')), and the code verifies in it.
    const target = uniquePhoneTarget();
    await stack.configureSandbox({
      minRetryDelaySeconds: 0,
      maxAttempts: 2,
      dropNextAnswers: { 'verification.create': 2 },
    });
    await startVerification(stack.client, { target }, stack.options).catch(() => undefined);
    return checkTheLatestCode(stack, target, windowId(target, stack.options.idKey));
  },
  async 'resend-failed-by-prelude-errors'(stack) {
    // A resend whose three attempts Prelude answers 500: no code went out. Code from 0.1.0 kept its
    // reservation counted at the target's limits; later code gives it back
    // (patched('give-back-unsent-send')). The window stays open, and the first code verifies.
    const target = uniquePhoneTarget();
    const policy = { resendCooldownSeconds: 0 };
    await stack.configureSandbox({ minRetryDelaySeconds: 0 });
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    await stack.configureSandbox({ failNextCalls: { 'verification.create': 3 } });
    await startVerification(stack.client, { target }, stack.options).catch(() => undefined);
    return checkTheLatestCode(stack, target, sent.windowId);
  },
  async 'notification-delivered'(stack) {
    const { notificationId } = await startNotification(
      stack.client,
      {
        to: uniquePhoneNumber(),
        template_id: 'template_sandbox_order_shipped',
        variables: { order_id: 'R-1' },
      },
      { taskQueue: stack.taskQueue, deliveryTimeoutSeconds: 30, callTimeoutMs: stack.options.callTimeoutMs },
    );
    return notificationId;
  },
  async 'resend-refused-by-prelude'(stack) {
    // A resend Prelude refuses as premature (our cooldown off, Prelude's delay 30 s): no code went
    // out. Code from 0.1.0 kept its reservation counted at the target's limits; later code gives it
    // back (patched('give-back-refused-send')). The first code then verifies.
    const target = uniquePhoneTarget();
    const policy = { resendCooldownSeconds: 0 };
    await stack.configureSandbox({ minRetryDelaySeconds: 30 });
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    await startVerification(stack.client, { target }, stack.options).catch(() => undefined);
    return checkTheLatestCode(stack, target, sent.windowId);
  },
  async 'fallback-refused-by-prelude'(stack) {
    // A fallback send (the first code not delivered within 2 s) that Prelude refuses as premature
    // (its resend delay 30 s): no code went out. Code from 0.1.0 kept its reservation counted at the
    // target's limits; later code gives it back (patched('give-back-refused-fallback')). The window
    // then expires.
    const target = uniquePhoneTarget();
    const policy = {
      windowSeconds: 5,
      maxSends: 2,
      fallbackChannels: ['sms' as const, 'whatsapp' as const],
      deliveryTimeoutSeconds: 2,
    };
    await stack.configureSandbox({ deliveryDelayMs: 60_000, minRetryDelaySeconds: 30 });
    const sent = await startVerification(stack.client, { target, policy }, stack.options);
    return afterItCloses(stack, sent.windowId);
  },
  async 'notification-failed-by-prelude-errors'(stack) {
    // Every attempt of the send is answered 500: Prelude took nothing, and the run ends rejected.
    // Code from 0.1.0 let Temporal make the attempts; later code makes them itself
    // (patched('notify-send-once')).
    await stack.configureSandbox({ errorRate: 1 });
    try {
      const { notificationId } = await startNotification(
        stack.client,
        { to: uniquePhoneNumber(), template_id: 'template_sandbox_verified' },
        {
          taskQueue: stack.taskQueue,
          deliveryTimeoutSeconds: 30,
          callTimeoutMs: stack.options.callTimeoutMs,
        },
      );
      await notificationResult(stack.client, notificationId);
      return notificationId;
    } finally {
      await stack.resetSandbox();
    }
  },
  async 'success-message-failed-by-prelude-errors'(stack) {
    // The target's limits entity sends the success message, and every attempt of it is answered 500.
    // Code from 0.1.0 let Temporal make the attempts; later code makes them itself
    // (patched('success-message-once')). The check is answered before the errors are on; the
    // message's request, held by the sandbox's latency, meets them. The entity's period is short, so
    // that it ends after the report (the replay then sees what followed the failed call).
    const target = uniquePhoneTarget();
    const options = { ...stack.options, limits: { ...stack.options.limits, periodSeconds: 30 } };
    const policy = { successTemplateId: 'template_sandbox_verified' };
    const sent = await startVerification(stack.client, { target, policy }, options);
    const code = await stack.latestCode(target.value);
    await stack.configureSandbox({ latencyMs: 500 });
    await checkCode(stack.client, { target, code }, options);
    await stack.configureSandbox({ errorRate: 1 });
    const entity = stack.client.workflow.getHandle(targetLimitsIdOf(sent.windowId));
    try {
      await until(
        async () =>
          ((await entity.fetchHistory()).events ?? []).some((e) => e.activityTaskFailedEventAttributes),
        40_000,
      );
    } finally {
      await stack.resetSandbox();
    }
    return entity.workflowId;
  },
};

/**
 * Puts the sandbox's knobs back and checks the code it sent last to `target` (whatever the answer:
 * the history records it); answers `windowId`.
 */
async function checkTheLatestCode(
  stack: TestStack,
  target: { type: 'phone_number'; value: string },
  windowId: string,
): Promise<string> {
  await stack.resetSandbox();
  const code = await stack.latestCode(target.value);
  await checkCode(stack.client, { target, code }, stack.options).catch(() => undefined);
  return windowId;
}

/** Waits for a window to close by itself, then puts the sandbox's knobs back; answers its ID. */
async function afterItCloses(stack: TestStack, windowId: string): Promise<string> {
  await stack.client.workflow
    .getHandle(windowId)
    .result()
    .catch(() => undefined);
  await stack.resetSandbox();
  return windowId;
}

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(100);
  }
}

/** Writes one run's history, once it has completed. */
async function record(stack: TestStack, file: string, workflowId: string, runId?: string): Promise<void> {
  const handle = stack.client.workflow.getHandle(workflowId, runId);
  // A terminated entity has no result; its history is complete all the same.
  await handle.result().catch(() => undefined);
  writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
  console.log(JSON.stringify({ workflowId, file }));
}

/**
 * Ends a limits entity once it has made its report (it would otherwise live out its period): its
 * history then holds the report's calls, and ends as a terminated run does.
 */
async function terminateAfterReport(stack: TestStack, workflowId: string): Promise<void> {
  const handle = stack.client.workflow.getHandle(workflowId);
  await until(async () => {
    const history = await handle.fetchHistory();
    return (history.events ?? []).filter((e) => e.activityTaskCompletedEventAttributes).length >= 2;
  });
  await handle.terminate('recorded for replay');
}

/**
 * A send guard shard's life: sends with and without signals, one refused by the range's velocity,
 * an operator's budget set and removed, then a reset, after which it ends.
 */
async function guardedSends(stack: TestStack): Promise<string> {
  const options = {
    ...stack.options,
    guards: { ...stack.options.guards, block: { ...stack.options.guards.block, numbers: 2 } },
  };
  const inBlock = (n: number) => `+33645000${String(n).padStart(3, '0')}`;
  const send = (value: string, signals?: { ip: string; device_id: string }) =>
    startVerification(stack.client, { target: { type: 'phone_number', value }, signals }, options);
  await send(inBlock(1), { ip: '192.0.2.1', device_id: 'device-1' });
  await send(inBlock(2));
  await send(inBlock(3)).catch(() => undefined);
  await setCountryBudget(stack.client, 'FR', { sends: 2_000 }, options);
  await setCountryBudget(stack.client, 'FR', null, options);
  await resetCountryGuard(stack.client, 'FR', options);
  // Nothing counted any more and no budget set: the shard ends of itself.
  return guardShardOf(inBlock(1), options).workflowId;
}

/**
 * A send guard shard lending its budget out (admission leases, src/guards/leases.ts): a first send
 * that brings a lease, a send the lease admits, a send the shard judges for a lease's key (its lent
 * unit and interim report), a window's refusal given back, the leases handed back with their
 * reports, a new lease and its report, then a reset, after which it ends.
 */
async function leasedSends(stack: TestStack): Promise<string> {
  const { guards } = stack.options;
  const options = {
    ...stack.options,
    guards: {
      ...guards,
      admission: 'lease' as const,
      countries: '*' as const,
      shards: 1,
      ip: { ...guards.ip, sends: 3 },
      block: { ...guards.block, numbers: 2, mode: 'enforce' as const },
    },
  };
  // UK mobiles (a shard of their own): `block` picks the range, `n` the number in it.
  const uk = (block: number, n: number) => `+447400${String(900 + block)}${String(n).padStart(3, '0')}`;
  // A minute between two sends of a window: a resend within it is refused.
  const policy = { resendCooldownSeconds: 60 };
  const send = (value: string, signals?: { ip: string }) =>
    startVerification(
      stack.client,
      { target: { type: 'phone_number', value }, signals, policy },
      options,
    ).then(
      () => 'sent',
      (error: unknown) => (error instanceof VerificationError ? error.code : Promise.reject(error)),
    );
  const ip = { ip: '192.0.2.7' };
  const answers = [
    // The shard judges the first send and grants a lease with it.
    await send(uk(1, 1), ip),
    // The lease admits the next, in a range of its own.
    await send(uk(2, 1), ip),
    // A second number of that range: the lease admitted one of it, so the shard judges this one,
    // with the lease's unit and its interim report.
    await send(uk(2, 2), ip),
    // The same number again (its range is the lease's too, so the shard judges it): its window
    // refuses it (cooldown), and the shard's grant is given back.
    await send(uk(2, 2)),
  ];
  if (answers.join() !== 'sent,sent,sent,premature_retry') {
    throw new Error(`leased sends answered ${answers.join()}`);
  }
  // Reported and handed back; then a new lease, reported and handed back in turn.
  await returnAdmissionLeases(stack.client);
  if ((await send(uk(3, 1))) !== 'sent') throw new Error('the send after the hand-back was refused');
  await send(uk(4, 1));
  await returnAdmissionLeases(stack.client);
  await resetCountryGuard(stack.client, 'GB', options);
  // Nothing counted, no lease held, no budget set: the shard ends of itself.
  return guardShardOf(uk(1, 1), options).workflowId;
}

/** Send guard shards, each recorded once it has ended (RECORD_SCENARIOS names them too). */
const shardScenarios: Record<string, Scenario> = {
  'send-guard': guardedSends,
  'send-guard-leases': leasedSends,
};

async function main(): Promise<void> {
  const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as {
    version: string;
  };
  const outDir = join(historiesDir, version);
  mkdirSync(outDir, { recursive: true });
  // The fixtures' own key ring (not a secret: it guards nothing but these recordings).
  const ringFile = join(outDir, 'key-ring.txt');
  if (!existsSync(ringFile)) writeFileSync(ringFile, `fixtures:${randomBytes(32).toString('base64')}\n`);
  const keyRing = parseKeyRing(readFileSync(ringFile, 'utf8').trim());
  const only = process.env.RECORD_SCENARIOS?.split(',').filter(Boolean);

  process.env.TEST_WORKFLOW_BUNDLE = await writeWorkflowBundle(
    join(mkdtempSync(join(tmpdir(), 'prelude-temporal-')), 'workflows.js'),
  );
  const devServer = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer({ uiPort: false });
  if (devServer) process.env.TEMPORAL_ADDRESS = devServer.address;
  try {
    for (const activityMode of ['local', 'remote'] as const) {
      const stack = await startStack({
        withServer: true,
        keyRing,
        activityMode,
        sandboxEnv: { SANDBOX_UNDELIVERABLE_NUMBERS: undeliverable, SANDBOX_SUSPICIOUS_NUMBERS: suspicious },
      });
      try {
        const windows: Record<string, string> = {};
        for (const [name, run] of Object.entries(scenarios)) {
          if (only && !only.includes(name)) continue;
          windows[name] = await run(stack);
          await record(stack, join(outDir, `${activityMode}-${name}.json`), windows[name]);
        }
        if (!only) {
          // The limits entities the scenarios above started: the rate-limited target's, which ends
          // once its 3 s period is over, and the verified window's, which made its outcome report.
          const entityOf = (scenario: string) => targetLimitsIdOf(windows[scenario]!);
          await record(stack, join(outDir, `${activityMode}-target-limits.json`), entityOf('rate-limited'));
          await terminateAfterReport(stack, entityOf('verified-after-resend-and-wrong-code'));
          await record(
            stack,
            join(outDir, `${activityMode}-target-limits-with-report.json`),
            entityOf('verified-after-resend-and-wrong-code'),
          );
        }
        for (const [name, run] of Object.entries(shardScenarios)) {
          if (only && !only.includes(name)) continue;
          await record(stack, join(outDir, `${activityMode}-${name}.json`), await run(stack));
        }
      } finally {
        await stack.stop();
      }
    }
  } finally {
    await devServer?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
