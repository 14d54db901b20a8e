/**
 * Prelude has no idempotency key: when the answer of a call Prelude applied is lost (the sandbox
 * applies the call, then cuts the connection), the retried call's answer is read by Prelude's
 * lifecycle rules. A user who typed the right code is verified, and a code that went out is counted.
 * A call Prelude answered with an error was not applied, and counts nothing.
 * Also: the history a plain verified window writes, event by event.
 */
import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { activityEnvironmentNow } from '../support/activity-environment';
import { createLimitsActivities } from '../../activities/limits';
import { createSendActivities } from '../../activities/send';
import { createVerifyActivities } from '../../activities/verify';
import {
  cancelVerification,
  checkCode,
  getVerification,
  startVerification,
  targetKey,
  windowId,
} from '../../src/client';
import { normalizeTarget } from '../../src/prelude';
import { verificationWorkflow } from '../../workflows';
import { sendCodeUpdate, stateQuery, targetLimitsIdOf, targetUsageQuery } from '../../workflows/messages';
import { checksJudged, openWithCheckAnswersLost } from '../support/lost-checks';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';
import { eventually } from '../support/eventually';
import { guardShardOf } from '../../src/guards/check';
import { returnAdmissionLeases } from '../../src/guards/leases';
import { guardUsageQuery } from '../../workflows/send-guard-messages';

describe.each(['local', 'remote'] as const)(
  'answers lost after Prelude applied the call (%s activities)',
  (activityMode) => {
    let stack: TestStack;

    beforeAll(async () => {
      // Without Prelude's History API (an account that cannot read it, or an e-mail target): the
      // window's own rules count lost checks. With it, ./lost-checks-history.test.ts.
      stack = await startStack({
        activityMode,
        sandboxEnv: { SANDBOX_HISTORY_API: 'false' },
        // This file sends about as many codes to one country a minute as the default burst allows
        // (100, a quarter per shard), and the leases' reserve is counted against it too: a resend
        // late in the file was refused as country_budget_exhausted in two full CI runs. Its subject
        // is lost answers; the budget's own tests are ./send-guards.test.ts and
        // test/e2e/pumping.test.ts.
        env: { GUARD_COUNTRY_BURST: '100000' },
      });
    });
    afterAll(async () => {
      await stack?.stop();
    });
    afterEach(async () => {
      await stack.configureSandbox({
        dropNextAnswers: { 'verification.create': 0, 'verification.check': 0 },
        failNextCalls: { 'verification.create': 0, 'verification.check': 0 },
      });
      await stack.configureSandbox({ minRetryDelaySeconds: 0, maxAttempts: 5 });
    });

    it('verifies a right code whose success answer was lost, saying the outcome was inferred', async () => {
      const target = uniquePhoneTarget();
      await startVerification(stack.client, { target }, stack.options);
      const code = await stack.latestCode(target.value);
      await stack.configureSandbox({ dropNextAnswers: { 'verification.check': 1 } });

      const checked = await checkCode(stack.client, { target, code }, stack.options);
      expect(checked).toMatchObject({ status: 'success', checksUsed: 1 });
      const state = await getVerification(stack.client, target, stack.options);
      expect(state).toMatchObject({
        outcome: 'verified',
        inferred: expect.stringContaining('retried check'),
      });
    });

    /**
     * Opens a window and checks its right code with every answer lost: all three attempts reach
     * Prelude (the first succeeds), and the check gives up as `prelude_unavailable`.
     */
    async function rightCodeWithEveryAnswerLost(policy?: { maxChecks: number }) {
      const target = await openWithCheckAnswersLost(stack, 3, policy);
      const code = await stack.latestCode(target.value);
      await expect(checkCode(stack.client, { target, code }, stack.options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      return { target, code };
    }

    it('remembers a right code whose every check attempt was lost, and verifies the user’s retry of it', async () => {
      const { target, code } = await rightCodeWithEveryAnswerLost();
      // The window cannot tell this code from a wrong one, which would have spent a check at each
      // of the three attempts: it counts those, and never shows more checks than Prelude has left.
      expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
        outcome: 'open',
        checksUsed: 3,
      });
      // The user types the same code again: Prelude's window is closed, and that is this code's success.
      // Prelude counted one check, the first attempt's; the window gives back the two others.
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
        checksUsed: 1,
      });
      expect((await getVerification(stack.client, target, stack.options)).outcome).toBe('verified');
      expect(await checksJudged(stack, target.value)).toBe(1);
    });

    /**
     * The window of three checks kept the last one for the retry of `code`, and that retry verifies
     * it: Prelude counted one check, the first attempt's.
     */
    async function expectLastCheckKeptAndTheRetryVerified(
      target: { type: 'phone_number'; value: string },
      code: string,
    ) {
      expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
        outcome: 'open',
        checksUsed: 2,
        checksLeft: 1,
      });
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
        checksUsed: 1,
      });
      expect((await getVerification(stack.client, target, stack.options)).outcome).toBe('verified');
      expect(await checksJudged(stack, target.value)).toBe(1);
    }

    /** Runs `play` with Prelude's windows allowing `maxChecks` checks, then puts its default back. */
    async function withPreludeChecks(maxChecks: number, play: () => Promise<void>) {
      await stack.configureSandbox({ maxChecks });
      try {
        await play();
      } finally {
        await stack.configureSandbox({ maxChecks: 5 });
      }
    }

    it('keeps a check for the retry of a code whose every answer was lost, and verifies it', async () => {
      const { target, code } = await rightCodeWithEveryAnswerLost({ maxChecks: 3 });
      // Three lost attempts would use up the window's three checks; one is kept for the retry.
      await expectLastCheckKeptAndTheRetryVerified(target, code);
    });

    it('keeps the last check when the retry loses every answer too, and verifies the next retry', async () => {
      const { target, code } = await rightCodeWithEveryAnswerLost({ maxChecks: 3 });
      // The retry's every answer (Prelude's window closed: expired_or_not_found) is lost too. Its
      // attempts spent nothing if the code was right, and Prelude refuses a check past its last if
      // it was wrong: the window does not close on what it cannot know.
      await stack.configureSandbox({ dropNextAnswers: { 'verification.check': 3 } });
      await expect(checkCode(stack.client, { target, code }, stack.options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      await expectLastCheckKeptAndTheRetryVerified(target, code);
    });

    it('counts every check once Prelude refuses one as too many, after lost answers it kept a check for', async () => {
      await withPreludeChecks(3, async () => {
        const target = await openWithCheckAnswersLost(stack, 3, { maxChecks: 3 });
        await expect(
          checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options),
        ).rejects.toMatchObject({
          code: 'prelude_unavailable',
        });
        // Three wrong checks reached Prelude; the window counted two and kept one for a retry.
        expect(await checksJudged(stack, target.value)).toBe(3);
        await expect(
          checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options),
        ).rejects.toMatchObject({
          code: 'too_many_checks',
        });
        expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
          outcome: 'max_checks',
          checksUsed: 3,
          checksLeft: 0,
        });
      });
    });

    it('keeps the last check when a wrong code is answered after lost attempts, for Prelude to spend', async () => {
      await withPreludeChecks(3, async () => {
        const target = await openWithCheckAnswersLost(stack, 2, { maxChecks: 3 });
        // Two attempts lost, the third answered: three checks if both lost ones reached Prelude, one
        // if a crash cut them first. The window counts two, and keeps the last for Prelude's word.
        expect(await checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).toMatchObject({
          status: 'failure',
          checksUsed: 2,
          checksLeft: 1,
        });
        // Here both reached it: Prelude refuses the next check, and the window counts every one.
        const code = await stack.latestCode(target.value);
        await expect(checkCode(stack.client, { target, code }, stack.options)).rejects.toMatchObject({
          code: 'too_many_checks',
        });
        expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
          outcome: 'max_checks',
          checksUsed: 3,
        });
        expect(await checksJudged(stack, target.value)).toBe(3);
      });
    });

    it('does not credit another code with a lost success', async () => {
      const { target } = await rightCodeWithEveryAnswerLost();
      expect(await checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).toMatchObject({
        status: 'expired_or_not_found',
      });
      expect((await getVerification(stack.client, target, stack.options)).outcome).toBe('expired');
    });

    it('counts a retried wrong code as the two checks Prelude saw', async () => {
      const target = await openWithCheckAnswersLost(stack, 1);
      expect(await checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).toMatchObject({
        status: 'failure',
        checksUsed: 2,
      });
    });

    it('counts a wrong code retried twice as the three checks Prelude saw', async () => {
      const target = await openWithCheckAnswersLost(stack, 2);
      expect(await checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).toMatchObject({
        status: 'failure',
        checksUsed: 3,
        checksLeft: 2,
      });
      expect(await checksJudged(stack, target.value)).toBe(3);
    });

    it('counts each lost attempt of a wrong code whose every answer was lost', async () => {
      const target = await openWithCheckAnswersLost(stack, 3);
      await expect(checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
        outcome: 'open',
        checksUsed: 3,
      });
      expect(await checksJudged(stack, target.value)).toBe(3);
    });

    it('counts a wrong code once when Prelude answered an attempt with an error first', async () => {
      const target = uniquePhoneTarget();
      await startVerification(stack.client, { target }, stack.options);
      await stack.configureSandbox({ failNextCalls: { 'verification.check': 1 } });
      expect(await checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).toMatchObject({
        status: 'failure',
        checksUsed: 1,
      });
      expect(await checksJudged(stack, target.value)).toBe(1);
    });

    it('spends no check when Prelude answered every attempt with an error', async () => {
      const target = uniquePhoneTarget();
      await startVerification(stack.client, { target }, stack.options);
      const code = await stack.latestCode(target.value);
      await stack.configureSandbox({ failNextCalls: { 'verification.check': 3 } });
      await expect(checkCode(stack.client, { target, code }, stack.options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
        outcome: 'open',
        checksUsed: 0,
      });
      expect(await checksJudged(stack, target.value)).toBe(0);
      // Nothing reached Prelude, so the same code is a first check, not a retry of a lost one.
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
        checksUsed: 1,
      });
      expect((await getVerification(stack.client, target, stack.options)).inferred).toBeUndefined();
    });

    it('counts a send once when Prelude answered its first attempt with an error', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ failNextCalls: { 'verification.create': 1 } });
      const sent = await startVerification(stack.client, { target }, stack.options);
      expect(sent).toMatchObject({ status: 'success', sendsUsed: 1 });
      const state = await getVerification(stack.client, target, stack.options);
      expect(state.attempts).toEqual([expect.objectContaining({ trigger: 'initial' })]);
      expect(state.attempts[0]?.inferred).toBeUndefined();
    });

    it('still reads a first check that finds no window as expired when no answer was lost', async () => {
      const target = uniquePhoneTarget();
      await startVerification(stack.client, { target }, stack.options);
      const code = await stack.latestCode(target.value);
      // The code is used up at Prelude behind the window's back: a check now finds no window, and
      // nothing was lost, so nothing is inferred.
      await stack.prelude.verification.check({ target, code });
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'expired_or_not_found',
      });
      const state = await getVerification(stack.client, target, stack.options);
      expect(state.outcome).toBe('expired');
      expect(state.inferred).toBeUndefined();
    });

    it('counts a first send whose answer was lost, and answers the caller success', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 1 } });
      const sent = await startVerification(stack.client, { target }, stack.options);
      expect(sent).toMatchObject({ status: 'success', sendsUsed: 2 });
      const state = await getVerification(stack.client, target, stack.options);
      expect(state.attempts.map((a) => [a.trigger, a.inferred ?? false])).toEqual([
        ['initial', true],
        ['user_retry', false],
      ]);
    });

    it('counts a send whose answer was lost when the retry meets the cooldown, and reports it sent', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({
        minRetryDelaySeconds: 60,
        dropNextAnswers: { 'verification.create': 1 },
      });
      const sent = await startVerification(stack.client, { target }, stack.options);
      expect(sent).toMatchObject({ status: 'success', sendsUsed: 1 });
      expect(await stack.latestCode(target.value)).toMatch(/^\d+$/);
      const state = await getVerification(stack.client, target, stack.options);
      expect(state.attempts).toEqual([expect.objectContaining({ trigger: 'initial', inferred: true })]);
    });

    /** The creates the sandbox carried out and answered 200 for a target: the codes it sent. */
    async function codesSent(to: string): Promise<number> {
      const calls = await stack.appliedCalls(to, 'verification.create');
      return calls.filter((call) => call.status === 200).length;
    }

    it('keeps the window open with its send counted when every answer of a first send was lost', async () => {
      const target = uniquePhoneTarget();
      // The first attempt sends a code; the two others meet Prelude's resend delay. Every answer is lost.
      await stack.configureSandbox({
        minRetryDelaySeconds: 60,
        dropNextAnswers: { 'verification.create': 3 },
      });
      await expect(startVerification(stack.client, { target }, stack.options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      expect(await codesSent(target.value)).toBe(1);
      const state = await getVerification(stack.client, target, stack.options);
      expect(state).toMatchObject({ outcome: 'open', sendsUsed: 1 });
      expect(state.attempts).toEqual([expect.objectContaining({ trigger: 'initial', inferred: true })]);
      // The code that went out verifies in this window.
      const code = await stack.latestCode(target.value);
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
      });
    });

    /** The codes the sandbox sent to a target, beside the window's attempts: trigger, inferred. */
    async function sendsCounted(target: ReturnType<typeof uniquePhoneTarget>) {
      const state = await getVerification(stack.client, target, stack.options);
      return {
        codesSent: await codesSent(target.value),
        attempts: state.attempts.map((a) => [a.trigger, a.inferred ?? false]),
      };
    }

    it('counts each lost attempt of a first send that Prelude then answered retry', async () => {
      const target = uniquePhoneTarget();
      // No resend delay at Prelude: every attempt that reached it sent a code.
      await stack.configureSandbox({
        minRetryDelaySeconds: 0,
        dropNextAnswers: { 'verification.create': 2 },
      });
      const sent = await startVerification(stack.client, { target }, stack.options);
      expect(sent).toMatchObject({ status: 'success', sendsUsed: 3 });
      expect(await sendsCounted(target)).toEqual({
        codesSent: 3,
        attempts: [
          ['initial', true],
          ['user_retry', true],
          ['user_retry', false],
        ],
      });
    });

    it("counts each lost attempt's code against the target's limits too", async () => {
      const target = uniquePhoneTarget();
      const options = { ...stack.options, limits: { maxWindows: 5, maxSends: 4, periodSeconds: 3_600 } };
      await stack.configureSandbox({
        minRetryDelaySeconds: 0,
        dropNextAnswers: { 'verification.create': 2 },
      });
      const policy = { resendCooldownSeconds: 0 };
      // Three codes for the one send; the window shows the target's usage as the limits now count it.
      expect(await startVerification(stack.client, { target, policy }, options)).toMatchObject({
        sendsUsed: 3,
      });
      expect((await getVerification(stack.client, target, options)).targetUsage).toMatchObject({
        sendsUsed: 3,
        sendsLeft: 1,
      });
      // The target's fourth code is its last of the period.
      expect(await startVerification(stack.client, { target }, options)).toMatchObject({ sendsUsed: 4 });
      await expect(startVerification(stack.client, { target }, options)).rejects.toMatchObject({
        code: 'target_rate_limited',
      });
      expect(await codesSent(target.value)).toBe(4);
    });

    it("counts each lost attempt's code against the send guards too: the shard counts every SMS", async () => {
      const target = uniquePhoneTarget();
      const shard = stack.client.workflow.getHandle(guardShardOf(target.value, stack.options).workflowId);
      // Every lease reported: what the shard counts is then all it was sent.
      const sendsCounted = async () => {
        await returnAdmissionLeases(stack.client);
        return shard.query(guardUsageQuery).then(
          (usage) => usage.sendsUsed,
          () => 0,
        );
      };
      const before = await sendsCounted();
      await stack.configureSandbox({
        minRetryDelaySeconds: 0,
        dropNextAnswers: { 'verification.create': 2 },
      });
      const policy = { resendCooldownSeconds: 0 };
      // Three codes for the one send, which its guard grant counted as one.
      expect(await startVerification(stack.client, { target, policy }, stack.options)).toMatchObject({
        sendsUsed: 3,
      });
      expect(await codesSent(target.value)).toBe(3);
      // The window tells the shard as it answers; the shard counts it in its next task.
      const counted = await eventually(
        async () => {
          const more = (await sendsCounted()) - before;
          return more >= 3 ? more : undefined;
        },
        { description: 'the guard shard counts the three codes', timeoutMs: 5_000 },
      ).catch(async () => (await sendsCounted()) - before);
      expect(counted).toBe(3);
    });

    it('counts each lost attempt of a resend that Prelude then answered retry', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ minRetryDelaySeconds: 0 });
      const policy = { resendCooldownSeconds: 0 };
      await startVerification(stack.client, { target, policy }, stack.options);
      await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 1 } });
      const resent = await startVerification(stack.client, { target }, stack.options);
      expect(resent).toMatchObject({ status: 'retry', sendsUsed: 3 });
      expect(await sendsCounted(target)).toEqual({
        codesSent: 3,
        attempts: [
          ['initial', false],
          ['user_retry', true],
          ['user_retry', false],
        ],
      });
    });

    it('counts each attempt of a send whose every answer was lost, where Prelude resends at once', async () => {
      const target = uniquePhoneTarget();
      // Prelude's dashboard set to no resend delay, and the connector told so.
      const options = { ...stack.options, calls: { ...stack.options.calls, preludeResendDelaySeconds: 0 } };
      await stack.configureSandbox({
        minRetryDelaySeconds: 0,
        dropNextAnswers: { 'verification.create': 3 },
      });
      await expect(startVerification(stack.client, { target }, options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      expect(await sendsCounted(target)).toEqual({
        codesSent: 3,
        attempts: [
          ['initial', true],
          ['user_retry', true],
          ['user_retry', true],
        ],
      });
      const window = await getVerification(stack.client, target, options);
      expect(window).toMatchObject({ outcome: 'open', sendsUsed: 3 });
      // The target's limits count the three codes too (the window never heard its reservation's answer).
      const limits = stack.client.workflow.getHandle(targetLimitsIdOf(window.windowId));
      expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 3 });
    });

    it("gives back the target's limits of sends Prelude answered only with errors: an outage locks no one out", async () => {
      const target = uniquePhoneTarget();
      const options = { ...stack.options, limits: { maxWindows: 2, maxSends: 3, periodSeconds: 3_600 } };
      const policy = { resendCooldownSeconds: 0 };
      await stack.configureSandbox({ minRetryDelaySeconds: 0 });
      // A window opened before the outage. Then every create is answered 500 (three attempts a
      // send): a resend in that window, and, once the user cancels it, two first sends.
      await startVerification(stack.client, { target, policy }, options);
      await stack.configureSandbox({ failNextCalls: { 'verification.create': 9 } });
      const failedSend = () =>
        startVerification(stack.client, { target, policy }, options).catch((e: unknown) => e);
      expect(await failedSend()).toMatchObject({ code: 'prelude_unavailable', nothingSent: true });
      await cancelVerification(stack.client, target, options);
      for (let send = 0; send < 2; send++) {
        expect(await failedSend()).toMatchObject({ code: 'prelude_unavailable', nothingSent: true });
      }
      // Prelude is back: the user still has a window and two sends of the period, as Prelude sent
      // them one code.
      expect(await codesSent(target.value)).toBe(1);
      expect(await startVerification(stack.client, { target, policy }, options)).toMatchObject({
        status: 'success',
      });
      expect(await startVerification(stack.client, { target, policy }, options)).toMatchObject({
        sendsUsed: 2,
      });
      expect((await getVerification(stack.client, target, options)).targetUsage).toMatchObject({
        windowsUsed: 2,
        sendsUsed: 3,
        sendsLeft: 0,
      });
      expect(await codesSent(target.value)).toBe(3);
    });

    it("gives back a first send Prelude failed where Watch's verdict decides the send (enforce)", async () => {
      const target = uniquePhoneTarget();
      const options = {
        ...stack.options,
        policy: { ...stack.options.policy, fraudMode: 'enforce' as const },
        limits: { maxWindows: 1, maxSends: 3, periodSeconds: 3_600 },
      };
      await stack.configureSandbox({ failNextCalls: { 'verification.create': 3 } });
      await expect(startVerification(stack.client, { target }, options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
        nothingSent: true,
      });
      expect(await startVerification(stack.client, { target }, options)).toMatchObject({ status: 'success' });
      expect((await getVerification(stack.client, target, options)).targetUsage).toMatchObject({
        windowsUsed: 1,
        sendsUsed: 1,
      });
      expect(await codesSent(target.value)).toBe(1);
    });

    it("gives back the target's limits of resends Prelude refused as premature: they sent nothing", async () => {
      const target = uniquePhoneTarget();
      const options = {
        ...stack.options,
        limits: { maxWindows: 1, maxSends: 2, periodSeconds: 3_600 },
        // Every resend reaches the window (the send guards would answer the number's next early
        // resends themselves, from the first refusal).
        guards: { ...stack.options.guards, mode: 'off' as const },
      };
      // Our cooldown is off, and Prelude's resend delay refuses every resend: a configuration whose
      // cooldown is shorter than Prelude's delay.
      const policy = { resendCooldownSeconds: 0 };
      await stack.configureSandbox({ minRetryDelaySeconds: 30 });
      await startVerification(stack.client, { target, policy }, options);
      for (let resend = 0; resend < 3; resend++) {
        await expect(startVerification(stack.client, { target, policy }, options)).rejects.toMatchObject({
          code: 'premature_retry',
        });
      }
      const window = await getVerification(stack.client, target, options);
      const limits = stack.client.workflow.getHandle(targetLimitsIdOf(window.windowId));
      expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 1 });
      expect(await codesSent(target.value)).toBe(1);
      // Prelude's delay has passed: the user's second send of the period is still theirs.
      await stack.configureSandbox({ minRetryDelaySeconds: 0 });
      expect(await startVerification(stack.client, { target, policy }, options)).toMatchObject({
        status: 'retry',
        sendsUsed: 2,
      });
      expect(await codesSent(target.value)).toBe(2);
      expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 2 });
    });

    it('answers a first send Prelude refused as too many attempts, after its lost attempts filled its window, as sent', async () => {
      const target = uniquePhoneTarget();
      // Prelude's window takes two attempts, and resends at once: the send's first two attempts are
      // applied (two codes) and their answers lost, the third meets the full window. As the chaos run
      // found it, with worker kills in place of the lost answers.
      await stack.configureSandbox({
        minRetryDelaySeconds: 0,
        maxAttempts: 2,
        dropNextAnswers: { 'verification.create': 2 },
      });
      expect(await startVerification(stack.client, { target }, stack.options)).toMatchObject({
        status: 'success',
        sendsUsed: 2,
      });
      const window = await getVerification(stack.client, target, stack.options);
      expect(window).toMatchObject({ outcome: 'open', sendsLeft: 0 });
      expect(await codesSent(target.value)).toBe(2);
      const code = await stack.latestCode(target.value);
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
      });
    });

    it('answers a resend Prelude refused as too many attempts, after its lost attempts filled its window, as sent', async () => {
      const target = uniquePhoneTarget();
      const policy = { resendCooldownSeconds: 0 };
      // Prelude's window takes three attempts, and resends at once.
      await stack.configureSandbox({ minRetryDelaySeconds: 0, maxAttempts: 3 });
      await startVerification(stack.client, { target, policy }, stack.options);
      // The resend's first two attempts are applied (two more codes) and their answers lost; the
      // third meets the full window.
      await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 2 } });
      expect(await startVerification(stack.client, { target, policy }, stack.options)).toMatchObject({
        status: 'retry',
        sendsUsed: 3,
      });
      expect((await getVerification(stack.client, target, stack.options)).sendsLeft).toBe(0);
      expect(await sendsCounted(target)).toEqual({
        codesSent: 3,
        attempts: [
          ['initial', false],
          ['user_retry', true],
          ['user_retry', true],
        ],
      });
      const code = await stack.latestCode(target.value);
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
      });
    });

    it('counts a resend whose every answer was lost', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ minRetryDelaySeconds: 60 });
      const policy = { resendCooldownSeconds: 0 };
      await startVerification(stack.client, { target, policy }, stack.options);
      await stack.advanceSandboxClock(61);
      await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 3 } });
      await expect(startVerification(stack.client, { target }, stack.options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      expect(await codesSent(target.value)).toBe(2);
      const state = await getVerification(stack.client, target, stack.options);
      expect(state).toMatchObject({ outcome: 'open', sendsUsed: 2 });
      expect(state.attempts.map((a) => [a.trigger, a.inferred ?? false])).toEqual([
        ['initial', false],
        ['user_retry', true],
      ]);
    });

    /**
     * A send's run that a crash cut short just after its call, played as that run made the call (as
     * the chaos run found it, where a worker kill cut the task): it asked the target's limits under
     * the send's reservation, Prelude sent a code, and no one saw the answer.
     */
    async function playLostSendRun(
      target: ReturnType<typeof uniquePhoneTarget>,
      {
        windowId: correlationId,
        reservationId,
        opensWindow = false,
        call,
      }: { windowId: string; reservationId: string; opensWindow?: boolean; call: string },
    ): Promise<void> {
      const normalized = normalizeTarget(target);
      const { reserveAndCreateVerification } = createSendActivities({
        prelude: stack.prelude,
        client: stack.client,
      });
      await activityEnvironmentNow(stack.taskQueue).run(reserveAndCreateVerification, {
        reservation: {
          targetKey: targetKey(normalized, stack.options.idKey),
          reservationId,
          opensWindow,
          limits: stack.options.limits,
          asker: { call, execution: Date.now() - 60_000, known: [] },
        },
        create: { target: normalized, correlationId },
      });
    }

    /** The lost run's task runs again: two attempts answered 500, one applied with its answer lost. */
    async function runAgainFailing(window: WorkflowHandle, call: string): Promise<void> {
      await stack.configureSandbox({
        failNextCalls: { 'verification.create': 2 },
        dropNextAnswers: { 'verification.create': 1 },
      });
      await expect(
        window.executeUpdate(sendCodeUpdate, { args: [{}], updateId: call }),
      ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
    }

    it('counts the code of a resend run lost to a crash when its run again fails at every attempt', async () => {
      const target = uniquePhoneTarget();
      // Prelude resends at once, and the connector is told so: each attempt that reached it sent a code.
      const options = { ...stack.options, calls: { ...stack.options.calls, preludeResendDelaySeconds: 0 } };
      await stack.configureSandbox({ minRetryDelaySeconds: 0 });
      const policy = { resendCooldownSeconds: 0 };
      const { windowId } = await startVerification(stack.client, { target, policy }, options);
      const window = stack.client.workflow.getHandle(windowId);
      const { runId } = await window.describe();
      // A resend whose workflow task a crash cut short just after its call.
      const resendId = `resend-${randomUUID()}`;
      await playLostSendRun(target, { windowId, reservationId: `${runId}:2`, call: resendId });
      await runAgainFailing(window, resendId);
      // Three codes went out: the window and the target's limits count three.
      expect(await codesSent(target.value)).toBe(3);
      expect(await getVerification(stack.client, target, options)).toMatchObject({
        outcome: 'open',
        sendsUsed: 3,
      });
      const limits = stack.client.workflow.getHandle(targetLimitsIdOf(windowId));
      expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 3 });
      // The user's next resend: four codes, four counted.
      expect(await startVerification(stack.client, { target, policy }, options)).toMatchObject({
        sendsUsed: 4,
      });
      expect(await codesSent(target.value)).toBe(4);
      expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 4 });
    });

    it('counts the code of a first send run lost to a crash when its run again fails at every attempt', async () => {
      // As the chaos run found it: a first send's workflow task cut by a kill just after its call
      // reached Prelude, and the task run again with every attempt failing. The window is started
      // on its own, so that the lost run can be played under its run ID before the first send.
      const target = uniquePhoneTarget();
      const normalized = normalizeTarget(target);
      const key = targetKey(normalized, stack.options.idKey);
      await stack.configureSandbox({ minRetryDelaySeconds: 0 });
      const window = await stack.client.workflow.start(verificationWorkflow, {
        workflowId: windowId(normalized, stack.options.idKey),
        taskQueue: stack.taskQueue,
        args: [
          {
            target: normalized,
            targetKey: key,
            policy: stack.options.policy,
            calls: { ...stack.options.calls, preludeResendDelaySeconds: 0 },
            limits: stack.options.limits,
          },
        ],
      });
      const sendId = `send-${randomUUID()}`;
      await playLostSendRun(target, {
        windowId: window.workflowId,
        reservationId: `${window.firstExecutionRunId}:1`,
        opensWindow: true,
        call: sendId,
      });
      await runAgainFailing(window, sendId);
      // Two codes went out: the window stays open and counts both, and so do the target's limits.
      expect(await codesSent(target.value)).toBe(2);
      expect(await window.query(stateQuery)).toMatchObject({ outcome: 'open', sendsUsed: 2 });
      const limits = stack.client.workflow.getHandle(targetLimitsIdOf(window.workflowId));
      expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 2 });
    });

    describe('where the reservation is asked apart from the create', () => {
      // As Watch's `enforce` asks a first send's (and as windows of earlier code ask every send's):
      // a window started with calls that do not make them together.
      const openApart = async (target: ReturnType<typeof uniquePhoneTarget>) => {
        const normalized = normalizeTarget(target);
        const key = targetKey(normalized, stack.options.idKey);
        const workflowId = windowId(normalized, stack.options.idKey);
        await stack.client.workflow.executeUpdateWithStart(sendCodeUpdate, {
          args: [{}],
          startWorkflowOperation: new WithStartWorkflowOperation(verificationWorkflow, {
            workflowId,
            taskQueue: stack.taskQueue,
            args: [
              {
                target: normalized,
                targetKey: key,
                policy: { ...stack.options.policy, resendCooldownSeconds: 0 },
                calls: { ...stack.options.calls, preludeResendDelaySeconds: 0 },
                limits: stack.options.limits,
              },
            ],
            workflowIdConflictPolicy: 'FAIL',
          }),
        });
        const window = stack.client.workflow.getHandle(workflowId);
        const { runId } = await window.describe();
        return { window, key, normalized, runId };
      };
      /** A resend's run that a crash cut short just after its create: it reserved, and a code went out. */
      const playLostRun = async ({
        window,
        key,
        normalized,
        runId,
      }: Awaited<ReturnType<typeof openApart>>) => {
        const resendId = `resend-${randomUUID()}`;
        const activities = activityEnvironmentNow(stack.taskQueue);
        const { reserveTargetSend } = createLimitsActivities({ client: stack.client });
        await activities.run(reserveTargetSend, {
          targetKey: key,
          reservationId: `${runId}:2`,
          opensWindow: false,
          limits: stack.options.limits,
          asker: { call: resendId, execution: Date.now() - 60_000, known: [] },
        });
        const { createVerification } = createVerifyActivities({ prelude: stack.prelude });
        await activities.run(createVerification, { target: normalized, correlationId: window.workflowId });
        return resendId;
      };

      it('counts the code of a run lost to a crash when the resend run again succeeds', async () => {
        const target = uniquePhoneTarget();
        await stack.configureSandbox({ minRetryDelaySeconds: 0 });
        const opened = await openApart(target);
        const resendId = await playLostRun(opened);
        expect(
          await opened.window.executeUpdate(sendCodeUpdate, { args: [{}], updateId: resendId }),
        ).toMatchObject({ status: 'retry', sendsUsed: 3 });
        expect(await codesSent(target.value)).toBe(3);
      });

      it('counts the code of a run lost to a crash when the resend run again fails', async () => {
        const target = uniquePhoneTarget();
        await stack.configureSandbox({ minRetryDelaySeconds: 0 });
        const opened = await openApart(target);
        const resendId = await playLostRun(opened);
        await stack.configureSandbox({
          failNextCalls: { 'verification.create': 2 },
          dropNextAnswers: { 'verification.create': 1 },
        });
        await expect(
          opened.window.executeUpdate(sendCodeUpdate, { args: [{}], updateId: resendId }),
        ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
        expect(await codesSent(target.value)).toBe(3);
        expect(await opened.window.query(stateQuery)).toMatchObject({ outcome: 'open', sendsUsed: 3 });
        const limits = stack.client.workflow.getHandle(targetLimitsIdOf(opened.window.workflowId));
        expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 3 });
      });
    });
  },
);

describe('a verified window’s history', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('holds one deadline timer, never canceled; the send’s calls as markers, the check as one activity', async () => {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, stack.options);
    const code = await stack.latestCode(target.value);
    await checkCode(stack.client, { target, code }, stack.options);
    await stack.client.workflow.getHandle(sent.windowId).result();
    const history = await stack.client.workflow.getHandle(sent.windowId).fetchHistory();
    const types = (history.events ?? []).map((e) =>
      temporal.api.enums.v1.EventType[e.eventType!]!.replace('EVENT_TYPE_', ''),
    );
    expect(types.filter((t) => t === 'TIMER_STARTED')).toHaveLength(1);
    expect(types).not.toContain('TIMER_CANCELED');
    // The limits reservation, the create and predict (monitor) in one local call: one marker. The
    // check is a regular activity, so that its scheduling is in history before Prelude is called.
    expect(types.filter((t) => t === 'MARKER_RECORDED')).toHaveLength(1);
    expect(types.filter((t) => t.startsWith('ACTIVITY_TASK'))).toEqual([
      'ACTIVITY_TASK_SCHEDULED',
      'ACTIVITY_TASK_STARTED',
      'ACTIVITY_TASK_COMPLETED',
    ]);
    // The figure the README quotes; a change that adds events to every window shows up here.
    expect(types).toHaveLength(22);
  });
});
