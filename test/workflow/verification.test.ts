/**
 * The verification window as a user meets it: real dev server, real worker, the Prelude sandbox.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  cancelVerification,
  checkCode,
  getVerification,
  startVerification,
  VerificationError,
  windowId,
} from '../../src/client';
import {
  deliveryStatusSignal,
  outcomeSearchAttribute,
  verificationIdSearchAttribute,
} from '../../workflows/messages';
import { eventually, StopWaiting } from '../support/eventually';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<VerificationError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VerificationError);
    return error as VerificationError;
  }
  throw new Error('expected a VerificationError');
}

// Both ways of calling Prelude pass the same suite: local activities (the default) and regular ones.
describe.each(['local', 'remote'] as const)('verification window (%s activities)', (activityMode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ policy: { maxChecks: 3, maxSends: 3 }, activityMode });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  // Sandbox knobs a test turns (TTL, listed numbers) are put back whether it passed or not.
  afterEach(() => stack.resetSandbox());

  it('sends a code that the user reads from the inbox and verifies', async () => {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, stack.options);
    expect(sent).toMatchObject({
      status: 'success',
      windowId: windowId(target, stack.options.idKey),
      sendsUsed: 1,
      verificationId: expect.stringMatching(/^vrf_/),
    });

    const code = await stack.latestCode(target.value);
    const checked = await checkCode(stack.client, { target, code }, stack.options);
    expect(checked).toMatchObject({ status: 'success', checksUsed: 1, verificationId: sent.verificationId });

    const state = await getVerification(stack.client, target, stack.options);
    expect(state.outcome).toBe('verified');
    expect(state.nextResendAt).toBeUndefined(); // a closed window takes no resend
    expect(state.attempts).toHaveLength(1);
    expect(state.attempts[0]).toMatchObject({ number: 1, trigger: 'initial', channel: 'sms' });

    const description = await stack.client.workflow.getHandle(sent.windowId).describe();
    expect(description.typedSearchAttributes.get(outcomeSearchAttribute)).toBe('verified');
    expect(description.typedSearchAttributes.get(verificationIdSearchAttribute)).toBe(sent.verificationId);
  });

  it('counts a wrong code and still accepts the right one', async () => {
    const target = uniquePhoneTarget();
    await startVerification(stack.client, { target }, stack.options);
    const code = await stack.latestCode(target.value);
    const wrong = code === '000000' ? '111111' : '000000';

    await expect(checkCode(stack.client, { target, code: wrong }, stack.options)).resolves.toMatchObject({
      status: 'failure',
      checksUsed: 1,
      checksLeft: 2,
    });
    await expect(checkCode(stack.client, { target, code }, stack.options)).resolves.toMatchObject({
      status: 'success',
      checksUsed: 2,
    });
  });

  it('closes the window with max_checks after the last wrong code, then answers like no window at all', async () => {
    const target = uniquePhoneTarget();
    await startVerification(stack.client, { target }, stack.options);
    const wrongAnswers = [];
    for (let i = 0; i < 3; i++) {
      wrongAnswers.push(await checkCode(stack.client, { target, code: '0000000' }, stack.options));
    }
    expect(wrongAnswers.map((a) => a.checksLeft)).toEqual([2, 1, 0]);
    // How the window ended is not for a caller to learn: the same answer as a target never verified.
    const after = await checkCode(stack.client, { target, code: '1234567' }, stack.options);
    const never = await checkCode(
      stack.client,
      { target: uniquePhoneTarget(), code: '1234567' },
      stack.options,
    );
    expect({ ...after, windowId: 'w' }).toEqual({ ...never, windowId: 'w' });
    expect(after.status).toBe('expired_or_not_found');
    expect((await getVerification(stack.client, target, stack.options)).outcome).toBe('max_checks');
  });

  it('refuses a resend inside the cooldown and accepts it after, in the same Prelude window', async () => {
    const target = uniquePhoneTarget();
    const options = { ...stack.options, policy: { ...stack.options.policy, resendCooldownSeconds: 2 } };
    const first = await startVerification(stack.client, { target }, options);

    const early = await rejection(startVerification(stack.client, { target }, options));
    expect(early.code).toBe('premature_retry');
    expect(early.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(early.retryAfterSeconds).toBeLessThanOrEqual(2);

    // The cooldown runs on the workflow's clock: resend until the window takes it. Every refusal on
    // the way is the cooldown's (validators refuse without writing anything to the history).
    const resent = await eventually(
      async () => {
        try {
          return await startVerification(stack.client, { target }, options);
        } catch (error) {
          if (error instanceof VerificationError && error.code === 'premature_retry') return undefined;
          throw new StopWaiting(`the resend failed otherwise: ${String(error)}`);
        }
      },
      { description: 'the resend accepted once the 2 s cooldown has passed', intervalMs: 200 },
    );
    expect(resent).toMatchObject({ status: 'retry', sendsUsed: 2, verificationId: first.verificationId });
    expect(resent.windowId).toBe(first.windowId);
    const attempts = (await getVerification(stack.client, target, options)).attempts;
    expect(Date.parse(attempts[1]!.sentAt) - Date.parse(attempts[0]!.sentAt)).toBeGreaterThanOrEqual(2_000);
  });

  it('refuses a send once the window has used all its sends', async () => {
    const target = uniquePhoneTarget();
    const options = { ...stack.options, policy: { ...stack.options.policy, maxSends: 2 } };
    await startVerification(stack.client, { target }, options);
    await startVerification(stack.client, { target }, options);
    const refused = await rejection(startVerification(stack.client, { target }, options));
    expect(refused.code).toBe('too_many_attempts');
    const state = await getVerification(stack.client, target, options);
    expect(state).toMatchObject({ outcome: 'open', sendsUsed: 2, sendsLeft: 0 });
  });

  it('expires when its time is up; a check then finds no window and a new send opens a new one', async () => {
    const target = uniquePhoneTarget();
    const options = { ...stack.options, policy: { ...stack.options.policy, windowSeconds: 2 } };
    const first = await startVerification(stack.client, { target }, options);
    // The window's deadline is a Temporal timer: its run completes when it fires.
    await stack.client.workflow.getHandle(first.windowId).result();
    // Prelude's window (600 s in the sandbox) ends too: its clock moves past it instead of the test
    // waiting, so the next send finds no Prelude window either.
    await stack.advanceSandboxClock(600);

    expect((await getVerification(stack.client, target, options)).outcome).toBe('expired');
    await expect(checkCode(stack.client, { target, code: '123456' }, options)).resolves.toMatchObject({
      status: 'expired_or_not_found',
    });
    const next = await startVerification(stack.client, { target }, options);
    expect(next.status).toBe('success');
    expect(next.verificationId).not.toBe(first.verificationId);
  });

  it('reports a target on the block list as blocked and closes the window', async () => {
    const target = uniquePhoneTarget();
    await fetch(`${stack.sandbox.url}/v2/verification/management/phone-numbers/block`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-key', 'content-type': 'application/json' },
      body: JSON.stringify({ phone_number: target.value }),
    });
    const sent = await startVerification(stack.client, { target }, stack.options);
    expect(sent).toMatchObject({ status: 'blocked', reason: 'in_block_list' });
    const state = await getVerification(stack.client, target, stack.options);
    expect(state.outcome).toBe('blocked');
    expect(state.attempts).toHaveLength(0);
  });

  it('cancels an open window; a check afterwards finds nothing', async () => {
    const target = uniquePhoneTarget();
    await startVerification(stack.client, { target }, stack.options);
    const code = await stack.latestCode(target.value);
    const canceled = await cancelVerification(stack.client, target, stack.options);
    expect(canceled.outcome).toBe('canceled');
    await expect(checkCode(stack.client, { target, code }, stack.options)).resolves.toMatchObject({
      status: 'expired_or_not_found',
    });
  });

  it('gives the first answer again for a repeated Idempotency-Key and request, spending one check', async () => {
    const target = uniquePhoneTarget();
    await startVerification(stack.client, { target }, stack.options);
    const request = { target, code: '0000000', idempotencyKey: 'req-1' };
    const first = await checkCode(stack.client, request, stack.options);
    const again = await checkCode(stack.client, request, stack.options);
    expect(again).toEqual(first);
    expect((await getVerification(stack.client, target, stack.options)).checksUsed).toBe(1);
  });

  it('serialises concurrent checks: Prelude gets the next only once it answered the one before', async () => {
    const target = uniquePhoneTarget();
    await startVerification(stack.client, { target }, stack.options);
    await stack.configureSandbox({ latencyMs: 300 });
    const answers = await Promise.all([
      checkCode(stack.client, { target, code: '0000000' }, stack.options),
      checkCode(stack.client, { target, code: '0000001' }, stack.options),
    ]);
    expect(answers.map((a) => a.checksLeft).sort()).toEqual([1, 2]);
    // As Prelude saw them: the second check arrived after the first was carried out.
    const [second, first] = await stack.appliedCalls(target.value, 'verification.check');
    expect(Date.parse(second!.receivedAt)).toBeGreaterThanOrEqual(Date.parse(first!.at));
  });

  it('agrees with its outcome when checks are still waiting at the deadline', async () => {
    // The deadline passes while one check is at Prelude and another waits for its turn: the waiting
    // check and the expiry are both due when the first answer comes in.
    const target = uniquePhoneTarget();
    const sent = await startVerification(
      stack.client,
      { target, policy: { windowSeconds: 10 } },
      stack.options,
    );
    const code = await stack.latestCode(target.value);
    // The first check goes out 3.5 s before the deadline, and Prelude holds it 4.5 s (under the Prelude
    // client's 5 s timeout): on a loaded machine the check may take seconds to reach the window, and
    // it must still be there before the deadline.
    const left = Date.parse(sent.expiresAt) - Date.now();
    expect(left).toBeGreaterThan(3_500);
    await sleep(left - 3_500);
    await stack.configureSandbox({ latencyMs: 4_500 });
    const wrongCode = code === '000000' ? '111111' : '000000';
    const wrong = checkCode(stack.client, { target, code: wrongCode }, stack.options);
    await eventually(
      async () =>
        ((await stack.client.workflow.getHandle(sent.windowId).describe()).raw.pendingActivities?.length ??
          0) > 0,
      { description: 'the first check at Prelude' },
    );
    // The deadline passes while it is there.
    expect(Date.now()).toBeLessThan(Date.parse(sent.expiresAt));
    const right = checkCode(stack.client, { target, code }, stack.options);
    const [wrongAnswer, rightAnswer] = await Promise.all([wrong, right]);
    expect(wrongAnswer.status).toBe('failure');
    const state = await getVerification(stack.client, target, stack.options);
    // Whatever the order, the answers and the outcome agree, and both agree with Prelude.
    expect(rightAnswer.status === 'success').toBe(state.outcome === 'verified');
    expect(state.outcome).toBe('verified');
    const applied = await stack.appliedCalls(target.value, 'verification.check');
    expect(applied.map((call) => call.answer.status)).toEqual(['success', 'failure']);
  });

  it('answers expired_or_not_found to a check after the window was verified', async () => {
    const target = uniquePhoneTarget();
    await startVerification(stack.client, { target }, stack.options);
    const code = await stack.latestCode(target.value);
    await checkCode(stack.client, { target, code }, stack.options);
    await expect(checkCode(stack.client, { target, code }, stack.options)).resolves.toMatchObject({
      status: 'expired_or_not_found',
    });
  });

  it('cancels every window even while delivery reports stream into it', async () => {
    // Closing in the same workflow task as a signal arrives makes the server abort the update
    // (UnhandledCommand); the helper must resend it rather than answer with an error.
    const outcomes = [];
    for (let round = 0; round < 20; round += 1) {
      const target = uniquePhoneTarget();
      const sent = await startVerification(stack.client, { target }, stack.options);
      const handle = stack.client.workflow.getHandle(sent.windowId);
      const reports = Array.from(
        { length: 20 },
        (_, n) =>
          handle
            .signal(deliveryStatusSignal, {
              eventId: `evt_${round}_${n}`,
              attemptId: 'att_race',
              status: 'delivered',
              time: new Date().toISOString(),
            })
            .catch(() => undefined), // reports after the close reach a finished workflow
      );
      const canceled = await cancelVerification(stack.client, target, stack.options);
      await Promise.all(reports);
      outcomes.push(canceled.outcome);
    }
    expect(outcomes).toEqual(Array(20).fill('canceled'));
  });

  it('rejects a malformed code before it reaches the history', async () => {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, stack.options);
    const refused = await rejection(checkCode(stack.client, { target, code: '12' }, stack.options));
    expect(refused.code).toBe('invalid_code');
    const history = await stack.client.workflow.getHandle(sent.windowId).fetchHistory();
    const updates = history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? [];
    expect(updates).toHaveLength(1); // the first sendCode only
  });

  it('refuses a phone number that is not E.164 without starting anything', async () => {
    const refused = await rejection(
      startVerification(stack.client, { target: { type: 'phone_number', value: '12' } }, stack.options),
    );
    expect(refused.code).toBe('invalid_request');
  });
});

describe('verification helpers without a worker', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ withoutWorker: true, callTimeoutMs: 1_500 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('give a clear unavailable error within their deadline instead of hanging', async () => {
    const started = Date.now();
    const refused = await rejection(
      startVerification(stack.client, { target: uniquePhoneTarget() }, stack.options),
    );
    expect(refused.code).toBe('unavailable');
    expect(refused.message).toMatch(/worker/);
    // Without a deadline the call would wait for a worker forever (until the test's 60 s timeout);
    // the bound is the 1.5 s deadline with room for a loaded machine, far from a hang.
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
