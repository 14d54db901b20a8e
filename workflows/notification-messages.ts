/**
 * The notification workflow's contract: one run per Notify message, from the send to its final
 * delivery status. Deterministic and I/O-free: imported by workflow code and by clients alike.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { NotifySendRequest } from '../src/prelude';

/** Every notification's workflow ID starts with this prefix; the ingest routes by it. */
export const notificationIdPrefix = 'notification-';

/** The Notify request; its `correlation_id` is replaced by the run's workflow ID. */
export type NotificationRequest = NotifySendRequest;

/** Workflow input. */
export interface NotificationInput {
  request: NotificationRequest;
  /** How long to wait for a final delivery status after the send; then the outcome is `timed_out`. */
  deliveryTimeoutSeconds: number;
}

/** Where a message stands: Notify's statuses while it travels, then how the run ended. */
export type NotificationOutcome =
  'sending' | 'sent' | 'delivered' | 'failed' | 'unknown' | 'timed_out' | 'rejected';

/** A `transactional.message.*` webhook, reduced to what the workflow records. */
export interface MessageStatusReport {
  /** The webhook event's ID, so a report is applied once. */
  eventId: string;
  /** The event type's last part: `created`, `submitted`, `pending_delivery`, `delivered`, `failed`, … */
  status: string;
  /** `tx_…` when the event names it. */
  messageId?: string;
  /** Why a message failed (`status`/`reason` of a failed or unknown event). */
  reason?: string;
  time: string;
}

/** The run's state, and its result. */
export interface NotificationState {
  notificationId: string;
  outcome: NotificationOutcome;
  /** Prelude's message ID (`tx_…`), once sent. */
  messageId?: string;
  templateId: string;
  sentAt?: string;
  /** Every delivery report, in the order received. */
  reports: MessageStatusReport[];
  /** Why Prelude refused the send (`rejected`), or why delivery failed. */
  failure?: { code: string; message: string };
  closedAt?: string;
}

/** Statuses after which a message's fate is known. */
export const finalMessageStatuses: readonly string[] = ['delivered', 'failed', 'unknown'];

/** A delivery report from the webhook ingest. */
export const messageStatusSignal = defineSignal<[MessageStatusReport]>('messageStatus');
/** The notification as it stands. */
export const notificationStateQuery = defineQuery<NotificationState>('notificationState');
