/** Steps the lost-check tests share: a window whose next checks' answers are lost, and the truth to count them against. */
import { startVerification } from '../../src/client';
import { uniquePhoneTarget, type TestStack } from './stack';

/**
 * The checks the sandbox judged for a target: those it carried out and answered `success` or
 * `failure` (a check that meets a closed window spends nothing).
 */
export async function checksJudged(stack: TestStack, to: string): Promise<number> {
  const calls = await stack.appliedCalls(to, 'verification.check');
  return calls.filter(({ answer }) => answer.status === 'success' || answer.status === 'failure').length;
}

/** Opens a window, then has the sandbox carry out its next `drops` checks and lose their answers. */
export async function openWithCheckAnswersLost(
  stack: TestStack,
  drops: number,
  policy?: { maxChecks: number },
): Promise<{ type: 'phone_number'; value: string }> {
  const target = uniquePhoneTarget();
  await startVerification(stack.client, { target, ...(policy ? { policy } : {}) }, stack.options);
  await stack.configureSandbox({ dropNextAnswers: { 'verification.check': drops } });
  return target;
}
