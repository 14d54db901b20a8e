/**
 * What a closed window tells Prelude afterwards (Watch feedback, the success message), in a run of
 * its own: the window itself completes at once, so the next start for the same target opens a new
 * window right away instead of meeting a closed one still busy reporting.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { sideCallOptions } from './retry-policies';
import type { VerificationState, WindowPolicy } from './verification-messages';

const sideCalls = proxyActivities<Activities>(sideCallOptions);

/** Input of {@link windowOutcomeWorkflow}. */
export type WindowOutcomeInput = Pick<VerificationState, 'target' | 'windowId' | 'outcome' | 'sendsUsed'> & {
  policy: Pick<WindowPolicy, 'watchFeedback' | 'successTemplateId'>;
};

/** Whether a closed window has anything to report (most have not: no run is started then). */
export function hasOutcomeToReport({ policy, outcome, sendsUsed, target }: WindowOutcomeInput): boolean {
  const feedback = policy.watchFeedback && sendsUsed > 0;
  const message = outcome === 'verified' && !!policy.successTemplateId && target.type === 'phone_number';
  return feedback || message;
}

/** Watch feedback and the success message: best effort, the window's outcome stands either way. */
export async function windowOutcomeWorkflow(input: WindowOutcomeInput): Promise<void> {
  const { target, policy, windowId, outcome, sendsUsed } = input;
  const verified = outcome === 'verified';
  try {
    if (policy.watchFeedback && sendsUsed > 0) {
      await sideCalls.sendWatchFeedback({
        target,
        correlationId: windowId,
        types: verified ? ['verification.started', 'verification.completed'] : ['verification.started'],
      });
    }
    if (verified && policy.successTemplateId && target.type === 'phone_number') {
      await sideCalls.sendNotification({
        template_id: policy.successTemplateId,
        to: target.value,
        correlation_id: windowId,
      });
    }
  } catch (error) {
    log.warn('reporting the outcome failed', {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
