/**
 * The delivery-timeout fallback (`VERIFY_FALLBACK_CHANNELS` with `VERIFY_DELIVERY_TIMEOUT_SECONDS`):
 * an attempt with no `delivered` report that long after its send is resent on the next channel. Real
 * dev server, worker and HTTP service; the sandbox's signed delivery reports reach the windows
 * through the service's webhook route, and its `deliveryDelayMs` knob decides when `delivered` comes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkCode,
  getVerification,
  startVerification,
  type VerificationClientOptions,
} from '../../src/client';
import { targetLimitsIdOf, targetUsageQuery, type VerificationState } from '../../workflows/messages';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

// Several tests set the sandbox's knobs for the fallback after the first send has returned: the
// fallback must not come first. At 3 s it once did in a full CI run (Node 24, the suites beside this
// one busy): the fallback's failures were never seen. A throwaway copy that configured the sandbox
// 3.5 s after the send failed the same way.
const deliveryTimeoutSeconds = 5;

describe('fallback when the first channel is not delivered in time', () => {
  let stack: TestStack;
  let options: VerificationClientOptions;

  beforeAll(async () => {
    // Reports come 200 ms after a send unless a test delays them.
    stack = await startStack({ withServer: true, sandboxEnv: { SANDBOX_DELIVERY_DELAY_MS: '200' } });
    options = {
      ...stack.options,
      policy: {
        ...stack.options.policy,
        fallbackChannels: ['sms', 'whatsapp'],
        deliveryTimeoutSeconds,
        maxSends: 3,
      },
    };
  });
  afterAll(async () => {
    await stack?.stop();
  });
  // The delivery delay a test stretches comes back whether it passed or not.
  afterEach(() => stack.resetSandbox());

  const windowOf = (target: { type: 'phone_number'; value: string }) =>
    getVerification(stack.client, target, options);
  /** The options with a third fallback channel, so that a second fallback has one to go to. */
  const withThreeChannels = (): VerificationClientOptions => ({
    ...options,
    policy: { ...options.policy, fallbackChannels: ['sms', 'whatsapp', 'voice'] },
  });
  /**
   * Checks `code` while the sandbox carries out each of the check's attempts and loses its answer
   * (with `knobs` set too): the caller hears Prelude unavailable, and the check's fate is unknown.
   * Prelude's record is off for the test (an account that cannot read it): with it, the window would
   * learn the check's fate at once and hold nothing.
   */
  const checkWithEveryAnswerLost = async (
    target: { type: 'phone_number'; value: string },
    code: string,
    knobs: Record<string, unknown> = {},
  ) => {
    await stack.configureSandbox({
      ...knobs,
      historyApi: false,
      dropNextAnswers: { 'verification.check': 3 },
    });
    await expect(checkCode(stack.client, { target, code }, options)).rejects.toMatchObject({
      code: 'prelude_unavailable',
    });
  };

  /** No fallback went out (the sandbox got one create), and the user's retry of `code` verifies. */
  const expectNoFallbackAndTheCodeVerified = async (
    target: { type: 'phone_number'; value: string },
    code: string,
  ) => {
    expect(await stack.appliedCalls(target.value, 'verification.create')).toHaveLength(1);
    expect(await checkCode(stack.client, { target, code }, options)).toMatchObject({ status: 'success' });
    expect(await windowOf(target)).toMatchObject({ outcome: 'verified', sendsUsed: 1 });
  };

  it('resends on the next channel after the timeout, and not when the first was delivered in time', async () => {
    // A window whose first code is delivered in time...
    const onTime = uniquePhoneTarget();
    await startVerification(stack.client, { target: onTime }, options);
    await eventually(async () => (await windowOf(onTime)).attempts[0]?.deliveryStatus === 'delivered', {
      description: 'the delivered report of the first window’s code',
      timeoutMs: 20_000,
      intervalMs: 100,
    });

    // ...and one whose first code is still not delivered when the timeout passes (the carrier's
    // final report comes a minute later).
    await stack.configureSandbox({ deliveryDelayMs: 60_000 });
    const late = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target: late }, options);
    expect(sent).toMatchObject({ status: 'success', sendsUsed: 1 });
    const fellBack = await eventually(
      async () => {
        const state = await windowOf(late);
        return state.attempts.length >= 2 ? state : undefined;
      },
      { description: 'the late window’s fallback send', timeoutMs: 30_000, intervalMs: 200 },
    );

    const [first, second] = fellBack.attempts;
    expect(first).toMatchObject({ number: 1, trigger: 'initial', channel: 'sms' });
    expect(first!.deliveryStatus).not.toBe('delivered');
    expect(second).toMatchObject({
      number: 2,
      trigger: 'fallback',
      channel: 'whatsapp',
      switchedFrom: 'sms',
    });
    // Not before the timeout: the window waited for the report that long.
    expect(Date.parse(second!.sentAt) - Date.parse(first!.sentAt)).toBeGreaterThanOrEqual(
      deliveryTimeoutSeconds * 1000,
    );
    expect(fellBack).toMatchObject({ outcome: 'open', sendsUsed: 2, sendsLeft: 1 });
    // Prelude resent the window's code, on WhatsApp this time.
    const [resent, original] = await stack.messages(late.value);
    expect(resent).toMatchObject({ channel: 'whatsapp', code: original!.code });

    // The first window's timeout passed before the late one's (it was sent earlier): it was
    // delivered in time, so it was not resent.
    const kept: VerificationState = await windowOf(onTime);
    expect(kept.attempts).toHaveLength(1);
    expect(kept.sendsUsed).toBe(1);
    expect(await stack.messages(onTime.value)).toHaveLength(1);
  });

  /**
   * A window whose first code is not delivered in time, with Prelude resending at once, whose
   * fallback then meets `knobs` (its first attempt's answer lost, or the attempt cut): the window
   * once its fallback's answered attempt is recorded, the codes Prelude sent, and what the target's
   * limits count.
   */
  const fallbackAfter = async (knobs: Record<string, unknown>) => {
    const target = uniquePhoneTarget();
    await stack.configureSandbox({ deliveryDelayMs: 60_000, minRetryDelaySeconds: 0 });
    const { windowId } = await startVerification(stack.client, { target }, options);
    await stack.configureSandbox(knobs);
    const fellBack = await eventually(
      async () => {
        const state = await windowOf(target);
        return state.attempts.some((a) => a.trigger === 'fallback' && !a.inferred) ? state : undefined;
      },
      { description: 'the window’s fallback send', timeoutMs: 30_000, intervalMs: 200 },
    );
    const codes = (await stack.appliedCalls(target.value, 'verification.create')).filter(
      (call) => call.status === 200,
    );
    const limits = stack.client.workflow.getHandle(targetLimitsIdOf(windowId));
    return {
      codes: codes.length,
      window: fellBack,
      attempts: fellBack.attempts.map((a) => [a.trigger, a.inferred ?? false]),
      limits: (await limits.query(targetUsageQuery)).sendsUsed,
    };
  };

  it('counts the codes of a fallback send whose first answer was lost, in the window and at the limits', async () => {
    // The fallback's first attempt is applied and its answer lost; its retry is answered.
    const { codes, window, attempts, limits } = await fallbackAfter({
      dropNextAnswers: { 'verification.create': 1 },
    });
    // Prelude sent three codes: the first send's and two of the fallback's.
    expect(codes).toBe(3);
    expect(window).toMatchObject({ sendsUsed: 3, sendsLeft: 0 });
    // One record per code, in the order they went out: the report of the lost attempt, which came
    // in while the fallback was still under way, is the inferred record's.
    expect(attempts).toEqual([
      ['initial', false],
      ['fallback', true],
      ['fallback', false],
    ]);
    expect(limits).toBe(3);
  });

  it('counts none of a fallback’s attempts cut before they reached Prelude, as its record shows', async () => {
    // The fallback's first attempt is cut on its way in (no code); its retry is answered.
    const { codes, window, attempts, limits } = await fallbackAfter({
      cutNextCalls: { 'verification.create': 1 },
    });
    expect(codes).toBe(2);
    // Without Prelude's record, the cut attempt counted as a code too: 3 sends, none left.
    expect(window).toMatchObject({ sendsUsed: 2, sendsLeft: 1 });
    expect(attempts).toEqual([
      ['initial', false],
      ['fallback', false],
    ]);
    expect(limits).toBe(2);
  });

  it('counts each code of a fallback whose lost attempts filled Prelude’s window before it refused', async () => {
    const target = uniquePhoneTarget();
    // Prelude's window takes three attempts and resends at once; nothing is delivered in time.
    await stack.configureSandbox({ deliveryDelayMs: 60_000, minRetryDelaySeconds: 0, maxAttempts: 3 });
    const { windowId } = await startVerification(stack.client, { target }, options);
    // The fallback's first two attempts are applied (two more codes) and their answers lost; the
    // third meets the full window and is refused `too_many_attempts`.
    await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 2 } });
    await eventually(
      async () => {
        const calls = await stack.appliedCalls(target.value, 'verification.create');
        return calls.some((call) => call.status === 429) || undefined;
      },
      {
        description: 'Prelude’s refusal of the fallback’s third attempt',
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
    const codes = (await stack.appliedCalls(target.value, 'verification.create')).filter(
      (call) => call.status === 200,
    );
    expect(codes).toHaveLength(3);
    // The window counts the three codes the sandbox sent, and offers no more sends.
    const state = await eventually(
      async () => {
        const seen = await windowOf(target);
        return seen.sendsLeft === 0 ? seen : undefined;
      },
      { description: 'the window’s count after the refusal', timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(state.attempts.map((a) => [a.trigger, a.inferred ?? false, a.channel])).toEqual([
      ['initial', false, 'sms'],
      ['fallback', true, 'whatsapp'],
      ['fallback', true, 'whatsapp'],
    ]);
    expect(state).toMatchObject({ outcome: 'open', sendsUsed: 3 });
    const limits = stack.client.workflow.getHandle(targetLimitsIdOf(windowId));
    expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 3 });
    // The user has a code, and checks it.
    const code = await stack.latestCode(target.value);
    expect(await checkCode(stack.client, { target, code }, options)).toMatchObject({ status: 'success' });
  });

  it('gives a fallback that sent nothing back to the target’s limits', async () => {
    const target = uniquePhoneTarget();
    await stack.configureSandbox({ deliveryDelayMs: 60_000 });
    const { windowId } = await startVerification(stack.client, { target }, options);
    // Every attempt of the fallback is answered 500: nothing goes out.
    await stack.configureSandbox({ failNextCalls: { 'verification.create': 3 } });
    await eventually(
      async () => {
        const knobs = (await (await fetch(`${stack.sandbox.url}/sandbox/config`)).json()) as {
          failNextCalls: Record<string, number>;
        };
        return !knobs.failNextCalls['verification.create'] || undefined;
      },
      { description: 'the fallback’s three failed attempts', timeoutMs: 30_000, intervalMs: 200 },
    );
    // A check takes its turn after the fallback's, give-back included.
    await checkCode(stack.client, { target, code: '000000' }, options);
    expect(await stack.appliedCalls(target.value, 'verification.create')).toHaveLength(1);
    const limits = stack.client.workflow.getHandle(targetLimitsIdOf(windowId));
    expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 1 });
    expect(await windowOf(target)).toMatchObject({ outcome: 'open', sendsUsed: 1 });
  });

  it('gives a fallback Prelude refused back to the target’s limits', async () => {
    const target = uniquePhoneTarget();
    // Nothing is delivered in time, and Prelude's resend delay (30 s) is longer than the delivery
    // timeout: the fallback is refused as premature, and sends nothing.
    await stack.configureSandbox({ deliveryDelayMs: 60_000, minRetryDelaySeconds: 30 });
    const { windowId } = await startVerification(stack.client, { target }, options);
    await eventually(
      async () =>
        (await stack.appliedCalls(target.value, 'verification.create')).some(
          (call) => call.status === 429 && call.answer.code === 'premature_retry',
        ),
      { description: 'the fallback refused as premature', timeoutMs: 30_000, intervalMs: 200 },
    );
    // A check takes its turn after the fallback's, give-back included.
    await checkCode(stack.client, { target, code: '000000' }, options);
    const limits = stack.client.workflow.getHandle(targetLimitsIdOf(windowId));
    expect(await limits.query(targetUsageQuery)).toMatchObject({ sendsUsed: 1 });
    expect(await windowOf(target)).toMatchObject({ outcome: 'open', sendsUsed: 1 });
    expect(await stack.messages(target.value)).toHaveLength(1);
  });

  it('does not fall back while a lost check may have verified the code, and verifies its retry', async () => {
    const target = uniquePhoneTarget();
    // Nothing is delivered in time.
    await stack.configureSandbox({ deliveryDelayMs: 60_000 });
    await startVerification(stack.client, { target }, options);
    const code = await stack.latestCode(target.value);
    // The right code's every attempt is applied and its answer lost: the first verified it at
    // Prelude and closed Prelude's window, the others found it closed.
    await checkWithEveryAnswerLost(target, code);
    // The delivery timeout passes while the user retries: no fallback opens a new window at
    // Prelude with a new code.
    await sleep((deliveryTimeoutSeconds + 1) * 1000);
    await expectNoFallbackAndTheCodeVerified(target, code);
  });

  it('holds a fallback that fell due during a check whose answers were then all lost', async () => {
    const target = uniquePhoneTarget();
    await stack.configureSandbox({ deliveryDelayMs: 60_000 });
    const sentAt = Date.now();
    await startVerification(stack.client, { target }, options);
    const code = await stack.latestCode(target.value);
    // Each check attempt takes 1.5 s and its answer is lost: the delivery timeout passes while the
    // check is under way, and the fallback waits for its turn behind it.
    await checkWithEveryAnswerLost(target, code, { latencyMs: 1_500 });
    expect(Date.now() - sentAt).toBeGreaterThan(deliveryTimeoutSeconds * 1000);
    await stack.configureSandbox({ latencyMs: 0 });
    await sleep(1_000);
    await expectNoFallbackAndTheCodeVerified(target, code);
  });

  it('falls back once a later check shows Prelude’s window still open after a lost one', async () => {
    const target = uniquePhoneTarget();
    await stack.configureSandbox({ deliveryDelayMs: 60_000 });
    await startVerification(stack.client, { target }, options);
    // A wrong code's every answer is lost: its fate is unknown, so the fallback waits...
    await checkWithEveryAnswerLost(target, '000000');
    await sleep((deliveryTimeoutSeconds + 1) * 1000);
    expect(await stack.appliedCalls(target.value, 'verification.create')).toHaveLength(1);
    // ...until another wrong code is answered `failure`: Prelude's window is open, and the code not
    // delivered, so it goes out again on the next channel.
    expect(await checkCode(stack.client, { target, code: '111111' }, options)).toMatchObject({
      status: 'failure',
    });
    const fellBack = await eventually(
      async () => {
        const state = await windowOf(target);
        return state.attempts.length >= 2 ? state : undefined;
      },
      { description: 'the fallback after the answered check', timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(fellBack.attempts.map((a) => [a.trigger, a.channel])).toEqual([
      ['initial', 'sms'],
      ['fallback', 'whatsapp'],
    ]);
  });

  it('lists each code once, named by its report, when a send’s first answer was lost', async () => {
    const target = uniquePhoneTarget();
    // Prelude resends at once; the first attempt is applied and its answer lost. Its reports reach
    // the window while the send waits to try again.
    await stack.configureSandbox({ minRetryDelaySeconds: 0, dropNextAnswers: { 'verification.create': 1 } });
    const sent = await startVerification(stack.client, { target }, stack.options);
    expect(sent).toMatchObject({ status: 'success', sendsUsed: 2 });
    const codes = (await stack.appliedCalls(target.value, 'verification.create')).filter(
      (call) => call.status === 200,
    );
    expect(codes).toHaveLength(2);
    // Once both codes are reported delivered, the window lists exactly those two, each named once.
    const state = await eventually(
      async () => {
        const seen = await getVerification(stack.client, target, stack.options);
        const delivered = seen.attempts.filter((a) => a.deliveryStatus === 'delivered');
        return delivered.length >= codes.length ? seen : undefined;
      },
      { description: 'the delivered reports of both codes', timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(state.attempts.map((a) => [a.trigger, a.inferred ?? false])).toEqual([
      ['initial', true],
      ['user_retry', false],
    ]);
    const named = state.attempts.map((a) => a.attemptId);
    expect(named.every((id) => id?.startsWith('att_'))).toBe(true);
    expect(new Set(named).size).toBe(2);
    expect(state.sendsUsed).toBe(2);
  });

  it('falls back at once from a code reported undeliverable before its send recorded it', async () => {
    const target = uniquePhoneTarget();
    // The first attempt is applied and its answer lost: its reports, `undeliverable` among them,
    // reach the window while the send waits to try again. The retry resends at once, and its code
    // is undeliverable too.
    await stack.configureSandbox({
      undeliverableNumbers: [target.value],
      deliveryDelayMs: 0,
      minRetryDelaySeconds: 0,
      dropNextAnswers: { 'verification.create': 1 },
    });
    await startVerification(stack.client, { target }, withThreeChannels());
    const state = await eventually(
      async () => {
        const seen = await windowOf(target);
        return seen.attempts.filter((a) => a.deliveryStatus === 'undeliverable').length >= 3
          ? seen
          : undefined;
      },
      { description: 'three codes reported undeliverable', timeoutMs: 20_000, intervalMs: 100 },
    );
    // Each code once, under its own report, on the channel the sandbox sent it by (an inferred
    // code's channel is not known: its answer was lost, and reports do not name channels).
    const sent = (await stack.messages(target.value)).reverse();
    expect(state.attempts.map((a) => [a.trigger, a.inferred ?? false, a.channel])).toEqual([
      ['initial', true, undefined],
      ['user_retry', false, sent[1]!.channel],
      ['fallback', false, sent[2]!.channel],
    ]);
    expect(new Set(state.attempts.map((a) => a.attemptId)).size).toBe(3);
    // The latest code's report came at once, and so did the fallback: not a delivery timeout later.
    expect(Date.parse(state.attempts[2]!.sentAt) - Date.parse(state.attempts[1]!.sentAt)).toBeLessThan(
      deliveryTimeoutSeconds * 1000,
    );
  });

  it('falls back past the channel of a fallback whose every answer was lost or failed', async () => {
    const target = uniquePhoneTarget();
    // Nothing is delivered in time, and Prelude resends at once.
    await stack.configureSandbox({ deliveryDelayMs: 60_000, minRetryDelaySeconds: 0 });
    await startVerification(stack.client, { target }, withThreeChannels());
    // The fallback on WhatsApp: two attempts answered 500, the third applied and its answer lost.
    await stack.configureSandbox({
      failNextCalls: { 'verification.create': 2 },
      dropNextAnswers: { 'verification.create': 1 },
    });
    const state = await eventually(
      async () => {
        const seen = await windowOf(target);
        return seen.sendsUsed >= 3 ? seen : undefined;
      },
      { description: 'the window’s second fallback', timeoutMs: 30_000, intervalMs: 200 },
    );
    // The sandbox sent the first code by SMS and the lost fallback's by WhatsApp; the next went by
    // voice, not by SMS again.
    const sent = (await stack.messages(target.value)).reverse();
    expect(sent.map((m) => m.channel)).toEqual(['sms', 'whatsapp', 'voice']);
    expect(state.attempts.map((a) => [a.trigger, a.inferred ?? false, a.channel])).toEqual([
      ['initial', false, 'sms'],
      ['fallback', true, 'whatsapp'],
      ['fallback', false, 'voice'],
    ]);
  });
});
