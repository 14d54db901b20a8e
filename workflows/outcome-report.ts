/**
 * What a closed window tells Prelude afterwards: Watch feedback, the success message. The window
 * hands its report to the target's limits entity, which makes the calls (target-limits.ts): the
 * window completes at once, so the next start for the same target opens a new window right away,
 * and no workflow runs per report.
 */
import { log, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { sendNotifyMessage } from './notify-attempts';
import { sideCallOptions } from './retry-policies';
import type { VerificationState, WindowPolicy } from './verification-messages';

const sideCalls = proxyActivities<Activities>(sideCallOptions);

/**
 * `patched()` ID (README, "Workflow changes and replay"): the success message is sent attempt by
 * attempt, and not again after an attempt whose answer was lost (notify-attempts.ts). 0.1.0 let
 * Temporal retry it, which sent a second message when the first had gone out.
 */
const successMessageOncePatch = 'success-message-once';

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

/**
 * Watch feedback and the success message: best effort, the window's outcome stands either way. The
 * message is sent at most once: a second one would tell the user twice.
 */
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
      const message = { template_id: policy.successTemplateId, to: target.value, correlation_id: windowId };
      // Its webhooks name the window, which has closed: nothing tells the entity that a message
      // whose answer was lost went out, so it is not sent again.
      if (patched(successMessageOncePatch)) await sendNotifyMessage(message, 'none');
      else await sideCalls.sendNotification(message);
    }
  } catch (error) {
    log.warn('reporting the outcome failed', {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
