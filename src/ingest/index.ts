/**
 * The webhook ingest: a verified Prelude event, signalled to the run it is about — a verification
 * window for verify events (by `metadata.correlation_id`), a notification run for Notify message
 * events. Signalled straight from the webhook route: no workflow runs per event. A signal is durable
 * once Temporal has taken it, and the run ignores an event ID it has already applied, so an event
 * Prelude delivers again is applied once.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { isEventOf, isNotifyMessageEvent, type WebhookEvent } from '../prelude';
import {
  messageStatusSignal,
  notificationIdPrefix,
  type MessageStatusReport,
} from '../../workflows/notification-messages';
import {
  deliveryStatusSignal,
  windowIdPrefix,
  type DeliveryStatusReport,
} from '../../workflows/verification-messages';

/**
 * What became of an event: `applied` (signalled to its run), or, answered 200 all the same and
 * only counted, `run_closed` (its run has ended), `unknown_target` (it names no run of ours),
 * `informational` (an event no run waits for).
 */
export const ingestDispositions = ['applied', 'run_closed', 'unknown_target', 'informational'] as const;
export type IngestDisposition = (typeof ingestDispositions)[number];

/** The run an event is for, when it is for one. */
export interface IngestResult {
  disposition: IngestDisposition;
  /** The run the event names (only when it is one of ours). */
  workflowId?: string;
}

/**
 * Signals the event to the run it names. Rejects when Temporal did not take the signal: the caller
 * answers 5xx, and Prelude delivers the event again.
 */
export async function ingestEvent(client: Client, event: WebhookEvent): Promise<IngestResult> {
  const route = routeOf(event);
  if (!route) return { disposition: 'informational' };
  const { workflowId } = route;
  // Only our own runs are signalled, whatever a correlation ID says. An ID that is not well-formed
  // Unicode (a lone surrogate) names no run at all: Temporal refuses it, and a 5xx would have Prelude
  // deliver the event again for ever.
  if (!workflowId?.startsWith(route.prefix) || loneSurrogate.test(workflowId)) {
    return { disposition: 'unknown_target' };
  }
  const handle = client.workflow.getHandle(workflowId);
  try {
    if (route.kind === 'verification') await handle.signal(deliveryStatusSignal, route.report);
    else await handle.signal(messageStatusSignal, route.report);
    return { disposition: 'applied', workflowId };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { disposition: 'run_closed', workflowId };
    throw error;
  }
}

/** A UTF-16 surrogate not in a pair (with the `u` flag, a pair is one code point, never matched). */
const loneSurrogate = /\p{Cs}/u;

type Route =
  | { kind: 'verification'; prefix: string; workflowId?: string; report: DeliveryStatusReport }
  | { kind: 'notification'; prefix: string; workflowId?: string; report: MessageStatusReport };

/** The workflow an event is for and the report to signal it, or nothing for other events. */
function routeOf(event: WebhookEvent): Route | undefined {
  if (isNotifyMessageEvent(event)) {
    const { payload } = event;
    return {
      kind: 'notification',
      prefix: notificationIdPrefix,
      workflowId: payload.correlation_id,
      report: {
        eventId: event.id,
        status: event.type.slice('transactional.message.'.length),
        messageId: payload.message_id ?? payload.id,
        reason: payload.reason,
        time: event.created_at,
      },
    };
  }
  const verify = deliveryReport(event);
  return verify && { kind: 'verification', prefix: windowIdPrefix, ...verify };
}

/** The delivery report a verify event carries, and the window it is for. */
function deliveryReport(
  event: WebhookEvent,
): { workflowId?: string; report: DeliveryStatusReport } | undefined {
  if (isEventOf(event, 'verify.delivery_status')) {
    const { payload } = event;
    return {
      workflowId: payload.metadata?.correlation_id,
      report: {
        eventId: event.id,
        attemptId: payload.attempt_id,
        verificationId: payload.verification_id,
        status: payload.status,
        time: payload.time,
      },
    };
  }
  if (isEventOf(event, 'verify.attempt')) {
    const { payload } = event;
    return {
      workflowId: payload.metadata?.correlation_id,
      report: {
        eventId: event.id,
        attemptId: payload.id,
        verificationId: payload.verification_id,
        status: payload.delivery_status ?? 'unknown',
        time: payload.time,
      },
    };
  }
  return undefined;
}
