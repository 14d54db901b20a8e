/**
 * How windows end and what they report afterwards, against the real dev server, a worker and the
 * sandbox: the `failed` outcome (a first send Prelude kept failing), Watch feedback
 * (`VERIFY_WATCH_FEEDBACK`) and the success message (`VERIFY_SUCCESS_TEMPLATE_ID`), both sent by the
 * run that reports a closed window's outcome. The worker reaches the sandbox through a recording
 * proxy: the sandbox's own call log holds only Verify calls.
 */
import {
  cancelVerification,
  checkCode,
  getVerification,
  startVerification,
  VerificationError,
  type VerificationClientOptions,
} from '../../src/client';
import { outcomeSearchAttribute, type WindowPolicy } from '../../workflows/messages';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';
import { eventually } from '../support/eventually';
import { outcomeReportOf, outcomeReported } from '../support/windows';

const successTemplate = 'template_sandbox_verified';
const successBody = 'Your phone number is verified. Welcome!';

describe('window outcomes and what is reported after them', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ withProxy: true, policy: { maxChecks: 2 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  // Error rates and the parts of the API taken down come back whether a test passed or not.
  afterEach(() => stack.resetSandbox());

  const withPolicy = (policy: Partial<WindowPolicy>): VerificationClientOptions => ({
    ...stack.options,
    policy: { ...stack.options.policy, ...policy },
  });
  const callsAbout = (path: string, value: string) =>
    stack.proxy!.calls.filter(
      (c) =>
        c.path === path &&
        (c.body?.target?.value === value ||
          c.body?.to === value ||
          c.body?.feedbacks?.some((f: { target: { value: string } }) => f.target.value === value)),
    );
  const verify = async (
    target: { type: 'phone_number'; value: string },
    options: VerificationClientOptions,
  ) => {
    const sent = await startVerification(stack.client, { target }, options);
    const code = await stack.latestCode(target.value);
    expect(await checkCode(stack.client, { target, code }, options)).toMatchObject({ status: 'success' });
    return sent;
  };

  describe('failed', () => {
    it('closes a window whose first send Prelude kept failing, and the next send opens a new one', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ errorRate: 1 });
      const refused = await startVerification(stack.client, { target }, stack.options).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(VerificationError);
      expect(refused).toMatchObject({ code: 'prelude_unavailable' });

      const failed = await getVerification(stack.client, target, stack.options);
      expect(failed).toMatchObject({ outcome: 'failed', sendsUsed: 0, attempts: [] });
      expect(failed.failure).toMatch(/server/i);
      expect(await stack.messages(target.value)).toHaveLength(0);
      // Every attempt of the create reached Prelude and got its 500.
      const creates = callsAbout('/v2/verification', target.value);
      expect(creates.length).toBeGreaterThanOrEqual(1);
      expect(creates.every((c) => c.status === 500)).toBe(true);
      const description = await stack.client.workflow.getHandle(failed.windowId).describe();
      expect(description.typedSearchAttributes.get(outcomeSearchAttribute)).toBe('failed');

      // Prelude is back: the next send does not resend into the failed window, it opens a new one.
      await stack.resetSandbox();
      const next = await startVerification(stack.client, { target }, stack.options);
      expect(next).toMatchObject({ status: 'success', sendsUsed: 1 });
      const reopened = await getVerification(stack.client, target, stack.options);
      expect(reopened).toMatchObject({ outcome: 'open', sendsUsed: 1 });
      expect(reopened.openedAt > failed.openedAt).toBe(true);
      expect(await stack.latestCode(target.value)).toMatch(/^\d{6}$/);
    });

    it('keeps the window open when a resend fails: the code already sent can still be checked', async () => {
      const target = uniquePhoneTarget();
      await startVerification(stack.client, { target }, stack.options);
      const code = await stack.latestCode(target.value);
      await stack.configureSandbox({ errorRate: 1 });
      await expect(startVerification(stack.client, { target }, stack.options)).rejects.toMatchObject({
        name: 'VerificationError',
        code: 'prelude_unavailable',
      });
      expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
        outcome: 'open',
        sendsUsed: 1,
      });
      await stack.resetSandbox();
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
      });
    });

    it('reports no Watch feedback for a failed window: no code went out', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ errorRate: 1 });
      const options = withPolicy({ watchFeedback: true });
      await expect(startVerification(stack.client, { target }, options)).rejects.toMatchObject({
        name: 'VerificationError',
        code: 'prelude_unavailable',
      });
      const { windowId, outcome } = await getVerification(stack.client, target, options);
      expect(outcome).toBe('failed');
      expect(await outcomeReportOf(stack.client, windowId)).toBeUndefined();
    });
  });

  describe('Watch feedback (VERIFY_WATCH_FEEDBACK)', () => {
    it('tells Watch a verified window started and completed', async () => {
      const target = uniquePhoneTarget();
      const sent = await verify(target, withPolicy({ watchFeedback: true }));
      await outcomeReported(stack.client, sent.windowId);

      const [feedback, ...more] = callsAbout('/v2/watch/feedback', target.value);
      expect(more).toHaveLength(0);
      expect(feedback).toMatchObject({ method: 'POST', status: 200 });
      expect(feedback!.body.feedbacks).toEqual([
        { target, type: 'verification.started', metadata: { correlation_id: sent.windowId } },
        { target, type: 'verification.completed', metadata: { correlation_id: sent.windowId } },
      ]);
    });

    it('tells Watch only that a window started when it closed unverified', async () => {
      const target = uniquePhoneTarget();
      const options = withPolicy({ watchFeedback: true });
      const sent = await startVerification(stack.client, { target }, options);
      for (const code of ['WRONG1', 'WRONG2']) await checkCode(stack.client, { target, code }, options);
      expect((await getVerification(stack.client, target, options)).outcome).toBe('max_checks');
      await outcomeReported(stack.client, sent.windowId);

      const feedbacks = callsAbout('/v2/watch/feedback', target.value);
      expect(feedbacks.map((c) => c.body.feedbacks.map((f: { type: string }) => f.type))).toEqual([
        ['verification.started'],
      ]);
    });

    it('sends none when it is off (the default): the window reports nothing', async () => {
      expect(stack.options.policy.watchFeedback).toBe(false);
      const target = uniquePhoneTarget();
      const sent = await verify(target, stack.options);
      expect(await outcomeReportOf(stack.client, sent.windowId)).toBeUndefined();
      expect(callsAbout('/v2/watch/feedback', target.value)).toHaveLength(0);
    });
  });

  describe('success message (VERIFY_SUCCESS_TEMPLATE_ID)', () => {
    it('sends the template to the number once it is verified', async () => {
      const target = uniquePhoneTarget();
      const sent = await verify(target, withPolicy({ successTemplateId: successTemplate }));
      await outcomeReported(stack.client, sent.windowId);

      const [newest] = await stack.messages(target.value);
      expect(newest).toMatchObject({ body: successBody, code: null });
      const notifications = callsAbout('/v2/notify', target.value);
      expect(notifications).toHaveLength(1);
      expect(notifications[0]).toMatchObject({
        status: 200,
        body: { template_id: successTemplate, to: target.value, correlation_id: sent.windowId },
      });
    });

    it('sends it once when the answer to its send is lost: it may have gone out, so it is not sent again', async () => {
      const target = uniquePhoneTarget();
      const options = withPolicy({ successTemplateId: successTemplate });
      // The next Notify send's answer is lost: the success message's (the code is sent by Verify).
      await stack.configureSandbox({ dropNextAnswers: { 'notify.send': 1 } });
      const sent = await verify(target, options);
      // Made: no call pending, none waiting for a retry.
      await outcomeReported(stack.client, sent.windowId);

      const sends = await stack.appliedCalls(target.value, 'notify.send');
      expect(sends).toHaveLength(1);
      expect(sends[0]).toMatchObject({ dropped: true, answer: { correlation_id: sent.windowId } });
      expect((await stack.messages(target.value)).filter((m) => m.body === successBody)).toHaveLength(1);
      expect(callsAbout('/v2/notify', target.value)).toHaveLength(1);
    });

    it('sends it again when Prelude answered the send with an error: one message', async () => {
      const target = uniquePhoneTarget();
      await stack.configureSandbox({ failNextCalls: { 'notify.send': 1 } });
      await verify(target, withPolicy({ successTemplateId: successTemplate }));
      await eventually(() => callsAbout('/v2/notify', target.value).some((c) => c.status === 200), {
        description: 'the success message sent',
      });
      expect(callsAbout('/v2/notify', target.value).map((c) => c.status)).toEqual([500, 200]);
      expect((await stack.messages(target.value)).filter((m) => m.body === successBody)).toHaveLength(1);
    });

    it('sends nothing when the window closes unverified', async () => {
      const target = uniquePhoneTarget();
      const options = withPolicy({ successTemplateId: successTemplate });
      const sent = await startVerification(stack.client, { target }, options);
      expect((await cancelVerification(stack.client, target, options)).outcome).toBe('canceled');
      expect(await outcomeReportOf(stack.client, sent.windowId)).toBeUndefined();
      expect((await stack.messages(target.value)).map((m) => m.body)).not.toContain(successBody);
    });

    it('sends both, feedback and message, when both are configured', async () => {
      const target = uniquePhoneTarget();
      const sent = await verify(
        target,
        withPolicy({ successTemplateId: successTemplate, watchFeedback: true }),
      );
      await outcomeReported(stack.client, sent.windowId);
      expect(callsAbout('/v2/watch/feedback', target.value)).toHaveLength(1);
      expect((await stack.messages(target.value))[0]?.body).toBe(successBody);
    });
  });
});
