/**
 * A check whose answer was lost, counted against Prelude's own record (the History API, which the
 * sandbox serves as Prelude does): the window's count is the checks Prelude judged, and a check
 * whose every attempt was lost is answered as Prelude judged it. Each test compares the window
 * with the sandbox's log of the checks it carried out. Where the record cannot be read, the
 * window's own rules count instead: ./lost-answers.test.ts runs with the sandbox's History API off.
 */
import { checkCode, getVerification, startVerification } from '../../src/client';
import { checksJudged, openWithCheckAnswersLost } from '../support/lost-checks';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

describe.each(['local', 'remote'] as const)(
  'a check whose answer was lost, counted from Prelude’s record (%s activities)',
  (activityMode) => {
    let stack: TestStack;

    beforeAll(async () => {
      stack = await startStack({ activityMode, withProxy: true });
    });
    afterAll(async () => {
      await stack?.stop();
    });
    afterEach(async () => {
      await stack.resetSandbox();
      await stack.configureSandbox({
        dropNextAnswers: { 'verification.check': 0 },
        maxChecks: 5,
      });
    });

    it('answers a right code whose every answer was lost success, as Prelude judged it', async () => {
      const target = await openWithCheckAnswersLost(stack, 3);
      const code = await stack.latestCode(target.value);
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
        checksUsed: 1,
      });
      const state = await getVerification(stack.client, target, stack.options);
      expect(state).toMatchObject({ outcome: 'verified', checksUsed: 1 });
      // Read, not inferred: Prelude's record says so.
      expect(state.inferred).toBeUndefined();
      expect(await checksJudged(stack, target.value)).toBe(1);
    });

    it('answers a wrong code whose every answer was lost failure, counting each check Prelude judged', async () => {
      const target = await openWithCheckAnswersLost(stack, 3);
      expect(await checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).toMatchObject({
        status: 'failure',
        checksUsed: 3,
        checksLeft: 2,
      });
      expect(await checksJudged(stack, target.value)).toBe(3);
      // The count is Prelude's: the right code still verifies in the two checks left.
      const code = await stack.latestCode(target.value);
      expect(await checkCode(stack.client, { target, code }, stack.options)).toMatchObject({
        status: 'success',
        checksUsed: 4,
      });
      expect(await checksJudged(stack, target.value)).toBe(4);
    });

    it('spends the last check Prelude judged when a wrong code is answered after lost attempts', async () => {
      await stack.configureSandbox({ maxChecks: 3 });
      const target = await openWithCheckAnswersLost(stack, 2, { maxChecks: 3 });
      // Two attempts lost and judged, the third answered: Prelude has none left, and nor has the window.
      expect(await checkCode(stack.client, { target, code: 'ZZZZZZ' }, stack.options)).toMatchObject({
        status: 'failure',
        checksUsed: 3,
        checksLeft: 0,
      });
      expect(await getVerification(stack.client, target, stack.options)).toMatchObject({
        outcome: 'max_checks',
      });
      expect(await checksJudged(stack, target.value)).toBe(3);
    });

    /**
     * Opens a window with short attempts and checks its right code while the proxy holds every
     * check, never passing one on: each of the three attempts times out, and none reached Prelude.
     */
    async function rightCodeNeverReachingPrelude() {
      const target = uniquePhoneTarget();
      const options = { ...stack.options, calls: { ...stack.options.calls, attemptTimeoutMs: 1_500 } };
      await startVerification(stack.client, { target }, options);
      const code = await stack.latestCode(target.value);
      stack.proxy!.stalled = ['/v2/verification/check'];
      await expect(checkCode(stack.client, { target, code }, options)).rejects.toMatchObject({
        code: 'prelude_unavailable',
      });
      const checksSeen = stack.proxy!.calls.filter(
        ({ path, body }) => path === '/v2/verification/check' && body?.target?.value === target.value,
      );
      expect(checksSeen).toHaveLength(3);
      stack.proxy!.stalled = [];
      return { target, code, options };
    }

    it('spends nothing for a check none of whose attempts reached Prelude, and verifies the next', async () => {
      const { target, code, options } = await rightCodeNeverReachingPrelude();
      expect(await checksJudged(stack, target.value)).toBe(0);
      // Without Prelude's record, the window counted two of these (keeping the last for a retry).
      expect(await getVerification(stack.client, target, options)).toMatchObject({
        outcome: 'open',
        checksUsed: 0,
      });
      expect(await checkCode(stack.client, { target, code }, options)).toMatchObject({
        status: 'success',
        checksUsed: 1,
      });
      expect(await checksJudged(stack, target.value)).toBe(1);
    });

    it('still reads a retry that finds Prelude’s window closed as the success of a code its record missed', async () => {
      const { target, code, options } = await rightCodeNeverReachingPrelude();
      // As if an attempt had reached Prelude after the record was read (a late request, or a record
      // that lags): Prelude's window converts behind the window's back.
      await stack.prelude.verification.check({ target, code });
      expect(await checkCode(stack.client, { target, code }, options)).toMatchObject({
        status: 'success',
        checksUsed: 1,
      });
      expect((await getVerification(stack.client, target, options)).outcome).toBe('verified');
    });
  },
);
