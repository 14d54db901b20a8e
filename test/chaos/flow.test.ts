/**
 * How the chaos run judges a flow whose window's checks were used up, against the sandbox's record
 * of the checks it spent: the run must not call Prelude's own answer a failure, nor take a window's
 * word for it.
 */
import type { CallRecord } from '../../src/sandbox/calls';
import { account, checksNotSpent } from './chaos';
import { runFlow, type FlowResult, type WindowAnswer } from './flow';
import { startStack, uniquePhoneNumber, type TestStack } from '../support/stack';

const apiToken = 'chaos-flow-token';

let stack: TestStack;
beforeAll(async () => {
  // Without Prelude's record (SANDBOX_HISTORY_API=false), as for an account that cannot read it: the
  // window counts lost checks by its own rules, the only way lost answers run its checks out.
  stack = await startStack({ withServer: true, apiToken, sandboxEnv: { SANDBOX_HISTORY_API: 'false' } });
});
afterAll(async () => {
  await stack?.stop();
});

/** A chaos flow against the stack's service, its wrong code `ZZZZZZ`. */
const runAgainstStack = (index: number, phone: string, { resend = false } = {}) =>
  runFlow(index, phone, {
    serviceUrl: stack.serverUrl!,
    sandboxUrl: stack.sandbox.url,
    apiToken,
    signal: AbortSignal.timeout(50_000),
    openBudgetMs: 40_000,
    stuckAfterMs: 20_000,
    wrongCode: 'ZZZZZZ',
    ...(resend ? { resend: { maxSends: stack.options.policy.maxSends } } : {}),
  });

/** The run's accounting of one flow, against the stack's sandbox. */
const accountAgainstStack = async (flow: FlowResult) =>
  (
    await account([flow], {
      serviceUrl: stack.serverUrl!,
      sandboxUrl: stack.sandbox.url,
      apiToken,
      idKey: stack.options.idKey!,
    })
  )[0];

describe('a flow whose wrong code lost its answers until the checks ran out', () => {
  let flow: FlowResult;
  let calls: CallRecord[];
  beforeAll(async () => {
    // The wrong code's first request loses all three attempts' answers, the client's next request
    // (a new key after `prelude_unavailable`) its first one: five checks spent, the window's all
    // but the last, which it keeps for Prelude's word. Prelude refuses the right code.
    await stack.configureSandbox({ dropNextAnswers: { 'verification.check': 4 } });
    const phone = uniquePhoneNumber();
    flow = await runAgainstStack(0, phone);
    calls = (await stack.appliedCalls(phone, 'verification.check')).filter((c) => c.status === 200);
  }, 60_000);
  afterAll(() => stack.resetSandbox());

  it('is judged checks_used_up, confirmed by the checks the sandbox spent', async () => {
    expect(flow.requests.filter((r) => r.step === 'wrong_check').map((r) => r.answer)).toEqual([
      'prelude_unavailable',
      'failure',
    ]);
    expect(flow.answers.right_check).toMatchObject({ code: 'too_many_checks' });
    expect(flow.verdict).toBe('checks_used_up');
    expect(flow.window).toMatchObject({ status: 'max_checks', checks_used: 5, checks_left: 0 });
    expect(calls.map((c) => [c.answer.status, c.dropped])).toEqual([
      ['failure', false],
      ['failure', true],
      ['failure', true],
      ['failure', true],
      ['failure', true],
    ]);

    const accounting = await accountAgainstStack(flow);
    expect(accounting).toMatchObject({
      lostChecks: 0,
      overcountedChecks: 0,
      duplicateSends: 0,
      codesListedTwice: 0,
    });
    expect(flow.verdict).toBe('checks_used_up');
    expect(flow.notes.join()).toContain('all of them spent at the sandbox');
  });

  it("does not take the window's word: fewer checks spent, or one verified, is a wrong outcome", () => {
    const window = flow.window as WindowAnswer;
    expect(checksNotSpent(window, calls)).toBeUndefined();
    expect(checksNotSpent(window, calls.slice(1))).toBe(
      'the sandbox spent 4 checks where the window counts 5',
    );
    const oneVerified = calls.map((c, i) =>
      i === 0 ? { ...c, answer: { ...c.answer, status: 'success' } } : c,
    );
    expect(checksNotSpent(window, oneVerified)).toBe('the sandbox verified 1 of its checks');
    expect(checksNotSpent({ ...window, status: 'open', checks_left: 1 }, calls)).toBe(
      'the window reads open with 1 checks left',
    );
  });
});

describe('a flow whose wrong code lost its answers until Prelude refused it as too many checks', () => {
  it('is judged checks_used_up, with every check Prelude spent counted by the window', async () => {
    // The wrong code's first request loses all three attempts' answers, the client's next request
    // (a new key after `prelude_unavailable`) its first two: five checks spent at Prelude, which
    // refuses the third attempt. The window had counted three, and kept one for a retry.
    await stack.configureSandbox({ dropNextAnswers: { 'verification.check': 5 } });
    const phone = uniquePhoneNumber();
    try {
      const flow = await runAgainstStack(1, phone);
      expect(flow.requests.filter((r) => r.step === 'wrong_check').map((r) => r.answer)).toEqual([
        'prelude_unavailable',
        'too_many_checks',
      ]);
      expect(flow.window).toMatchObject({ status: 'max_checks', checks_used: 5, checks_left: 0 });
      const accounting = await accountAgainstStack(flow);
      expect(accounting).toMatchObject({ lostChecks: 0, overcountedChecks: 0 });
      expect(flow.verdict).toBe('checks_used_up');
      expect(flow.notes.join()).toContain('all of them spent at the sandbox');
    } finally {
      await stack.resetSandbox();
    }
  }, 60_000);
});

describe('a flow that asks for its code again (CHAOS_RESEND)', () => {
  afterEach(() => stack.resetSandbox());

  /** The sends of the flow's number the sandbox carried out. */
  const creates = async (phone: string) =>
    (await stack.appliedCalls(phone, 'verification.create')).filter((c) => c.status === 200);

  it('resends in the open window and is verified, each code counted by the window', async () => {
    const phone = uniquePhoneNumber();
    const flow = await runAgainstStack(2, phone, { resend: true });
    expect(flow.verdict).toBe('correct');
    expect(flow.answers.resend).toMatchObject({ status: 'retry', id: flow.windowId });
    expect(flow.window?.attempts.map((a) => a.trigger)).toEqual(['initial', 'user_retry']);
    expect(await creates(phone)).toHaveLength(2);
    expect(await accountAgainstStack(flow)).toMatchObject({
      duplicateSends: 0,
      overcountedSends: 0,
      codesListedTwice: 0,
    });
  }, 60_000);

  it('holds the window to the sandbox when the first send lost an answer before the resend', async () => {
    // The first send's first attempt is carried out and its answer lost: its retry meets the window
    // Prelude opened (`retry`), and the window counts both codes; the resend is the third.
    await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 1 } });
    const phone = uniquePhoneNumber();
    const flow = await runAgainstStack(3, phone, { resend: true });
    expect(flow.verdict).toBe('correct');
    expect(await creates(phone)).toHaveLength(3);
    expect(flow.window?.attempts).toHaveLength(3);
    expect(await accountAgainstStack(flow)).toMatchObject({
      duplicateSends: 0,
      overcountedSends: 0,
      codesListedTwice: 0,
    });
  }, 60_000);
});
