/**
 * One workflow per Notify message: send it with the workflow ID as `correlation_id`, then wait for
 * the webhook ingest to report its final delivery status, or give up after a timeout. Its result
 * answers the question a sender has: was the message delivered?
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { AttemptsFailed } from './call-attempts';
import { sendNotifyMessage } from './notify-attempts';
import {
  finalMessageStatuses,
  messageStatusSignal,
  notificationStateQuery,
  type NotificationInput,
  type NotificationOutcome,
  type NotificationState,
} from './notification-messages';
import { notifySendOptions } from './retry-policies';
import { outcomeSearchAttribute } from './search-attributes';

const { sendNotification } = proxyActivities<Activities>(notifySendOptions);

/**
 * `patched()` ID (README, "Workflow changes and replay"): the send is made attempt by attempt, and
 * an attempt whose answer was lost is not repeated once a webhook says the message went out
 * (notify-attempts.ts). 0.1.0 let Temporal retry it, which sent the message again.
 */
const sendOncePatch = 'notify-send-once';

/** Sends one message and follows it to delivery. Returns its final state. */
export async function notificationWorkflow({
  request,
  deliveryTimeoutSeconds,
}: NotificationInput): Promise<NotificationState> {
  const notificationId = workflowInfo().workflowId;
  const state: NotificationState = {
    notificationId,
    outcome: 'sending',
    templateId: request.template_id,
    reports: [],
  };
  const applied = new Set<string>();
  setHandler(notificationStateQuery, () => ({ ...state, reports: [...state.reports] }));
  setHandler(messageStatusSignal, (report) => {
    if (applied.has(report.eventId)) return;
    // A report about another message sharing the correlation ID is not ours.
    if (report.messageId && state.messageId && report.messageId !== state.messageId) return;
    applied.add(report.eventId);
    state.reports.push(report);
    if (state.outcome === 'sent' && finalMessageStatuses.includes(report.status)) {
      finish(report.status as NotificationOutcome, report.reason);
    }
  });

  const finish = (outcome: NotificationOutcome, reason?: string) => {
    state.outcome = outcome;
    state.closedAt = new Date().toISOString();
    if (reason) state.failure = { code: reason, message: `Notify reported the message ${outcome}` };
    upsertSearchAttributes([{ key: outcomeSearchAttribute, value: outcome }]);
    log.info('notification closed', { outcome });
  };

  try {
    const outgoing = { ...request, correlation_id: notificationId };
    if (patched(sendOncePatch)) {
      const sent = await sendNotifyMessage(outgoing, { reported: () => state.reports.length > 0 });
      if ('message' in sent) {
        state.messageId = sent.message.id;
        state.sentAt = sent.message.created_at;
      } else {
        // The answer was lost, and a webhook says the message went out: it names the message.
        const [first] = state.reports;
        state.messageId = state.reports.find((r) => r.messageId)?.messageId;
        state.sentAt = first?.time;
      }
    } else {
      const sent = await sendNotification(outgoing);
      state.messageId = sent.id;
      state.sentAt = sent.created_at;
    }
    state.outcome = 'sent';
    upsertSearchAttributes([{ key: outcomeSearchAttribute, value: 'sent' }]);
  } catch (caught) {
    const error = caught instanceof AttemptsFailed ? caught.lastFailure : caught;
    const cause = error instanceof ActivityFailure ? error.cause : error;
    const code = cause instanceof ApplicationFailure ? (cause.type ?? 'failed') : 'failed';
    finish('rejected');
    state.failure = { code, message: cause instanceof Error ? cause.message : String(cause) };
    return state;
  }

  // Reports that raced ahead of the send's answer are already in `reports`.
  const early = state.reports.find((r) => finalMessageStatuses.includes(r.status));
  if (early) finish(early.status as NotificationOutcome, early.reason);
  else if (!(await condition(() => state.outcome !== 'sent', deliveryTimeoutSeconds * 1000))) {
    finish('timed_out');
  }
  return state;
}
