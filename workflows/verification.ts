/**
 * One workflow execution per verification window, mirroring Prelude's window: the first `sendCode`
 * opens it, later ones resend, `checkCode` ends it on the right code, and it closes by itself when
 * its time is up. Every rule a client could break (cooldown, send and check budgets, closed window)
 * is enforced by update validators, so refused requests never reach the history. The rules
 * themselves live in {@link VerificationWindow}; this file is the window's life, in order.
 */
import { allHandlersFinished, condition, setHandler, sleep } from '@temporalio/workflow';
import {
  cancelUpdate,
  checkCodeUpdate,
  deliveryStatusSignal,
  sendCodeUpdate,
  stateQuery,
  type VerificationInput,
  type VerificationState,
} from './verification-messages';
import { VerificationWindow } from './verification-window';

/** The verification window. Returns its final state. */
export async function verificationWorkflow(input: VerificationInput): Promise<VerificationState> {
  const window = new VerificationWindow(input);

  // Clients drive the window through these messages. The window starts with its first send (an
  // update-with-start), whose handler runs as soon as it is registered.
  setHandler(stateQuery, () => window.snapshot());
  setHandler(sendCodeUpdate, (request) => window.send(request), {
    validator: (request) => window.validateSend(request),
  });
  setHandler(checkCodeUpdate, (request) => window.check(request), {
    validator: (request) => window.validateCheck(request),
  });
  setHandler(cancelUpdate, () => window.cancel(), { validator: () => window.validateCancel() });
  setHandler(deliveryStatusSignal, (report) => window.recordDelivery(report));

  // Open until a check, a cancel or a refusal closes it, or its time is up; meanwhile a code that is
  // not delivered is resent on the next fallback channel.
  await fallBackUntilDeadline(window);

  // Time is up, unless something closed it first. Then every caller gets its answer before the run
  // completes, and Prelude is told how the window ended.
  // The common end, a window a check closed, awaits only what it must (each await in workflow code
  // costs the SDK a stack trace, on the path of the check's answer).
  if (window.isOpen) await window.expire();
  if (!allHandlersFinished()) await condition(allHandlersFinished);
  const report = window.outcomeReport();
  if (report) await window.handOverOutcomeReport(report);
  return window.snapshot();
}

/**
 * Waits out the window, falling back whenever its latest attempt is due to. One timer for the
 * deadline, started once: waiting on messages adds no timer, so a window without fallback channels
 * writes exactly one TimerStarted and never a TimerCanceled.
 */
async function fallBackUntilDeadline(window: VerificationWindow): Promise<void> {
  let deadlinePassed = false;
  void sleep(window.expiresAt - window.openedAt).then(() => (deadlinePassed = true));
  while (window.isOpen && !deadlinePassed) {
    const seen = window.deliveryProgress();
    const dueAt = window.fallbackDue()?.at;
    // A delivery report can only make a fallback due: without fallback channels it does not wake
    // the loop (one pass of the workflow code fewer for each webhook).
    const woken = () =>
      !window.isOpen || deadlinePassed || (window.fallsBack && window.deliveryProgress() !== seen);
    if (dueAt === undefined) await condition(woken);
    else await condition(woken, Math.max(1, dueAt - Date.now()));
    const due = window.fallbackDueNow();
    if (due && !deadlinePassed) await window.fallBack(due);
  }
}
