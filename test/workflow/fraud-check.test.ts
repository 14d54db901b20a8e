/**
 * The fraud check before a window's first send (`VERIFY_FRAUD_MODE`): `monitor` (the default) asks
 * Prelude Watch and records its verdict, `enforce` also blocks a target Watch finds suspicious, `off`
 * does not ask. Watch is advisory: when it cannot be reached the send goes on in both modes, with
 * `prediction: "unavailable"`. Real dev server and worker; the worker reaches the sandbox through a
 * proxy that can take Watch down while Verify keeps working.
 */
import { getVerification, startVerification, type VerificationClientOptions } from '../../src/client';
import { predictGraceMs } from '../../activities/send';
import type { FraudMode } from '../../workflows/messages';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

describe('the fraud check before the first send', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ withProxy: true });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  // Listed numbers and the parts of the API taken down come back whether a test passed or not.
  afterEach(() => stack.resetSandbox());

  const inMode = (fraudMode: FraudMode): VerificationClientOptions => ({
    ...stack.options,
    policy: { ...stack.options.policy, fraudMode },
  });
  /** The Watch predict calls the worker made about a target (each attempt, answered or not). */
  const predictCalls = (value: string) =>
    stack.proxy!.calls.filter((c) => c.path === '/v2/watch/predict' && c.body?.target?.value === value);
  const createCalls = (value: string) =>
    stack.proxy!.calls.filter((c) => c.path === '/v2/verification' && c.body?.target?.value === value);

  it('is on by default, in monitor mode', () => {
    expect(stack.options.policy.fraudMode).toBe('monitor');
  });

  it('monitor: records Watch’s verdict and sends the code even to a target Watch finds suspicious', async () => {
    const target = uniquePhoneTarget();
    await stack.configureSandbox({ suspiciousNumbers: [target.value] });
    const sent = await startVerification(stack.client, { target }, inMode('monitor'));
    expect(sent).toMatchObject({ status: 'success', sendsUsed: 1 });
    const state = await getVerification(stack.client, target, stack.options);
    expect(state).toMatchObject({ outcome: 'open', prediction: 'suspicious', sendsUsed: 1 });
    expect(await stack.latestCode(target.value)).toMatch(/^\d{6}$/);
    expect(predictCalls(target.value).map((c) => c.status)).toEqual([200]);
  });

  it('enforce: blocks a target Watch finds suspicious before any code is sent', async () => {
    const target = uniquePhoneTarget();
    await stack.configureSandbox({ suspiciousNumbers: [target.value] });
    const sent = await startVerification(stack.client, { target }, inMode('enforce'));
    expect(sent).toMatchObject({ status: 'blocked', reason: 'suspicious' });
    const state = await getVerification(stack.client, target, stack.options);
    expect(state).toMatchObject({ outcome: 'blocked', prediction: 'suspicious', sendsUsed: 0 });
    expect(await stack.messages(target.value)).toHaveLength(0);
    expect(createCalls(target.value)).toHaveLength(0);
  });

  it('enforce: lets a legitimate target through', async () => {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, inMode('enforce'));
    expect(sent.status).toBe('success');
    expect((await getVerification(stack.client, target, stack.options)).prediction).toBe('legitimate');
  });

  it.each(['monitor', 'enforce'] as const)(
    '%s: Watch down, the send still goes out, recorded with prediction "unavailable"',
    async (fraudMode) => {
      stack.proxy!.down = ['/v2/watch/'];
      const target = uniquePhoneTarget();
      const sent = await startVerification(stack.client, { target }, inMode(fraudMode));
      expect(sent).toMatchObject({ status: 'success', sendsUsed: 1 });
      const state = await getVerification(stack.client, target, stack.options);
      expect(state).toMatchObject({ outcome: 'open', prediction: 'unavailable', sendsUsed: 1 });
      expect(await stack.latestCode(target.value)).toMatch(/^\d{6}$/);
      // Watch was asked (and retried, within its short budget), and every attempt failed.
      const asked = predictCalls(target.value);
      expect(asked.length).toBeGreaterThanOrEqual(1);
      expect(asked.every((c) => c.status === 503)).toBe(true);
      expect(createCalls(target.value).map((c) => c.status)).toEqual([200]);
    },
  );

  it('monitor: a Watch that never answers costs the send about a second, no retry and no failure', async () => {
    stack.proxy!.stalled = ['/v2/watch/'];
    const target = uniquePhoneTarget();
    const started = Date.now();
    const sent = await startVerification(stack.client, { target }, inMode('monitor'));
    const tookMs = Date.now() - started;
    expect(sent).toMatchObject({ status: 'success', sendsUsed: 1 });
    expect((await getVerification(stack.client, target, stack.options)).prediction).toBe('unavailable');
    // One create, answered, and never made again: the verdict's wait did not time the send out.
    expect(createCalls(target.value).map((c) => c.status)).toEqual([200]);
    // Given up once the send's own calls were done and the grace after them had passed (1 s), not
    // after a create attempt's whole time (6 s here), as it used to be.
    expect(tookMs).toBeGreaterThanOrEqual(predictGraceMs);
    expect(tookMs).toBeLessThan(4_000);
  });

  it('off: does not ask Watch, and records no verdict', async () => {
    const target = uniquePhoneTarget();
    const sent = await startVerification(stack.client, { target }, inMode('off'));
    expect(sent.status).toBe('success');
    expect((await getVerification(stack.client, target, stack.options)).prediction).toBeUndefined();
    expect(predictCalls(target.value)).toHaveLength(0);
  });
});
