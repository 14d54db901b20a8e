/**
 * What a closed window tells Prelude afterwards: Watch feedback, the success message. The window
 * hands its report to the target's limits entity, which makes the calls (target-limits.ts): the
 * window completes at once, so the next start for the same target opens a new window right away,
 * and no workflow runs per report.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { sideCallOptions } from './retry-policies';
import type { VerificationState, WindowPolicy } from './verification-messages';

const sideCalls = proxyActivities<Activities>(sideCallOptions);

/** A closed window's report. */
export type OutcomeReport = Pick<VerificationState, 'target' | 'windowId' | 'outcome' | 'sendsUsed'> & {
  /** The window's run ID: the same report handed over twice is made once. */
  reportId: string;
  policy: Pick<WindowPolicy, 'watchFeedback' | 'successTemplateId'>;
};

/** Whether a closed window has anything to report (most have not: nothing is handed over then). */
export function hasOutcomeToReport({ policy, outcome, sendsUsed, target }: OutcomeReport): boolean {
  const feedback = policy.watchFeedback && sendsUsed > 0;
  const message = outcome === 'verified' && !!policy.successTemplateId && target.type === 'phone_number';
  return feedback || message;
}

/** Watch feedback and the success message: best effort, the window's outcome stands either way. */
export async function makeOutcomeReport(report: OutcomeReport): Promise<void> {
  const { target, policy, windowId, outcome, sendsUsed } = report;
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
