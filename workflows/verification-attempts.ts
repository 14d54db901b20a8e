/**
 * The window's record of the codes Prelude sent: which attempt a webhook report is about, and which
 * channel a fallback moves on to. Pure functions of the state, so the window's rules read the same
 * whether a report came first or a send did.
 */
import type { AttemptRecord, DeliveryStatusReport, VerificationState } from './verification-messages';

/**
 * Attaches a webhook report to the attempt it is about. Prelude names attempts (`att_…`) only in
 * webhooks, so a report with a new attempt ID belongs to the oldest send not yet named; when every
 * send is named, Prelude added the attempt on its own (an automatic fallback), or the report came
 * before the window recorded its send (see VerificationWindow's #addAttempt). Answers the record it
 * added in that case.
 */
export function applyDeliveryReport(
  state: VerificationState,
  report: DeliveryStatusReport,
): AttemptRecord | undefined {
  let attempt =
    state.attempts.find((a) => a.attemptId === report.attemptId) ??
    state.attempts.find((a) => a.attemptId === undefined);
  let added: AttemptRecord | undefined;
  if (!attempt) {
    attempt = added = {
      number: state.attempts.length + 1,
      trigger: 'auto_retry',
      sentAt: report.time,
      channel: report.channel,
    };
    state.attempts.push(attempt);
  }
  attempt.attemptId = report.attemptId;
  if (report.channel) attempt.channel = report.channel;
  // Webhooks arrive in any order: a late `submitted` must not overwrite an earlier-timed `delivered`.
  if (!attempt.deliveryUpdatedAt || report.time >= attempt.deliveryUpdatedAt) {
    attempt.deliveryStatus = report.status;
    attempt.deliveryUpdatedAt = report.time;
  }
  return added;
}

/** The channel after `current` in a fallback list (from the start when `current` is not in it). */
export function nextChannel(channels: string[], current: string | undefined): string | undefined {
  const at = current === undefined ? -1 : channels.indexOf(current);
  return channels[at + 1];
}
