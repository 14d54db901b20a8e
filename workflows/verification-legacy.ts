/**
 * How windows started before call settings existed (`input.calls` absent) wait and report: the code
 * their histories recorded, kept apart so that it is not mistaken for the current lifecycle. Nothing
 * here changes: a change would fail their replay (test/fixtures/histories/v1).
 */
import { condition } from '@temporalio/workflow';
import type { VerificationWindow } from './verification-window';
import { windowOutcomeWorkflow } from './window-outcome';

/**
 * Waits out the window, falling back whenever its latest attempt is due to, with a timer per wait
 * (to the deadline, or to the fallback when sooner), as these windows recorded.
 */
export async function legacyFallBackUntilDeadline(window: VerificationWindow): Promise<void> {
  while (window.isOpen && Date.now() < window.expiresAt) {
    const seen = window.deliveryProgress();
    const wakeAt = Math.min(window.fallbackDue()?.at ?? window.expiresAt, window.expiresAt);
    await condition(
      () => !window.isOpen || window.deliveryProgress() !== seen,
      Math.max(1, wakeAt - Date.now()),
    );
    // Unlike the current loop, this one does not ask whether the deadline has passed before falling
    // back: these windows did not.
    const due = window.fallbackDueNow();
    if (due) await window.fallBack(due);
  }
}

/**
 * These windows reported their outcome (Watch feedback, the success message) themselves, before
 * completing: the same steps as the outcome report's own run, in the window's history.
 */
export function legacyReportOutcome(window: VerificationWindow): Promise<void> {
  return windowOutcomeWorkflow(window.outcomeReport());
}
