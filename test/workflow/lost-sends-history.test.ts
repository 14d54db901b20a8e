/**
 * A send whose attempts' answers were lost, counted against Prelude's own record (the History API,
 * which the sandbox serves as Prelude does): an attempt cut on its way in sent no code, and the
 * window counts none for it, nor do the target's limits; an attempt Prelude carried out still
 * counts. Each test compares the window, and the target's limits entity, with the sandbox's log of
 * the creates it carried out. Where the record cannot be read, the window's own rules count every
 * such attempt: ./lost-answers.test.ts runs with the sandbox's History API off.
 */
import { getVerification, startVerification } from '../../src/client';
import { targetLimitsIdOf, targetUsageQuery } from '../../workflows/messages';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

describe.each(['local', 'remote'] as const)(
  'a send whose answer was lost, counted from Prelude’s record (%s activities)',
  (activityMode) => {
    let stack: TestStack;

    beforeAll(async () => {
      stack = await startStack({ activityMode });
    });
    afterAll(async () => {
      await stack?.stop();
    });
    afterEach(async () => {
      await stack.resetSandbox();
    });

    /** Codes the sandbox sent to a target: the creates it carried out and answered 200. */
    async function codesSent(to: string): Promise<number> {
      const calls = await stack.appliedCalls(to, 'verification.create');
      return calls.filter((call) => call.status === 200).length;
    }

    /** The window's sends, the target's limits' count of them, and the codes Prelude sent. */
    async function counts(target: ReturnType<typeof uniquePhoneTarget>) {
      const window = await getVerification(stack.client, target, stack.options);
      const limits = stack.client.workflow.getHandle(targetLimitsIdOf(window.windowId));
      return {
        codesSent: await codesSent(target.value),
        window: window.sendsUsed,
        limits: (await limits.query(targetUsageQuery)).sendsUsed,
        attempts: window.attempts.map((a) => [a.trigger, a.inferred ?? false]),
      };
    }

    /** A window with its first code sent, whose resends neither the window nor Prelude delays. */
    async function openWindow(preludeResendDelaySeconds = 0) {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ minRetryDelaySeconds: preludeResendDelaySeconds });
      await startVerification(stack.client, { target, policy: { resendCooldownSeconds: 0 } }, stack.options);
      return target;
    }

    it('counts none of the attempts of a resend that never reached Prelude', async () => {
      const target = await openWindow();
      // The resend's first two attempts are cut on their way in; the third is answered `retry`.
      await stack.configureSandbox({ cutNextCalls: { 'verification.create': 2 } });
      expect(await startVerification(stack.client, { target }, stack.options)).toMatchObject({
        status: 'retry',
        sendsUsed: 2,
      });
      // Without the record, the window counted each cut attempt as a code: 4, and so did the limits.
      expect(await counts(target)).toEqual({
        codesSent: 2,
        window: 2,
        limits: 2,
        attempts: [
          ['initial', false],
          ['user_retry', false],
        ],
      });
    });

    it('still counts a lost attempt of a resend that Prelude carried out', async () => {
      const target = await openWindow();
      await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 1 } });
      expect(await startVerification(stack.client, { target }, stack.options)).toMatchObject({
        status: 'retry',
        sendsUsed: 3,
      });
      expect(await counts(target)).toEqual({
        codesSent: 3,
        window: 3,
        limits: 3,
        attempts: [
          ['initial', false],
          ['user_retry', true],
          ['user_retry', false],
        ],
      });
    });

    it('answers a resend refused as premature after a cut attempt with the refusal: it sent nothing', async () => {
      // Prelude waits a minute between codes; the window does not.
      const target = await openWindow(60);
      await stack.configureSandbox({ cutNextCalls: { 'verification.create': 1 } });
      // Without the record, the window took the refusal for the cut attempt's code, and answered sent.
      await expect(startVerification(stack.client, { target }, stack.options)).rejects.toMatchObject({
        code: 'premature_retry',
      });
      expect(await counts(target)).toEqual({
        codesSent: 1,
        window: 1,
        limits: 1,
        attempts: [['initial', false]],
      });
    });

    it('fails a resend none of whose attempts reached Prelude with nothing counted', async () => {
      const target = await openWindow();
      await stack.configureSandbox({ cutNextCalls: { 'verification.create': 3 } });
      await expect(startVerification(stack.client, { target }, stack.options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      // Without the record, the window counted the first attempt as a code, and so did the limits.
      expect(await counts(target)).toEqual({
        codesSent: 1,
        window: 1,
        limits: 1,
        attempts: [['initial', false]],
      });
      // The next resend goes out, as the first of the window's.
      expect(await startVerification(stack.client, { target }, stack.options)).toMatchObject({
        status: 'retry',
        sendsUsed: 2,
      });
    });
  },
);
