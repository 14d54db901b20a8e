import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { isEventOf, isNotifyMessageEvent, type WebhookEvent } from '../src/prelude';
import {
  messageStatusSignal,
  notificationIdPrefix,
  type MessageStatusReport,
} from '../workflows/notification-messages';
import {
  deliveryStatusSignal,
  windowIdPrefix,
  type DeliveryStatusReport,
} from '../workflows/verification-messages';
import type { IngestResult } from '../workflows/webhook-ingest-messages';
import { runActivityCall } from './failures';

/** What the ingest activity needs: a client to signal the workflows events belong to. */
export interface IngestDependencies {
  client: Client;
}

/** Builds the ingest activity. */
export function createIngestActivities({ client }: IngestDependencies) {
  return {
    /**
     * Signals the workflow named by the event's correlation ID: a verification window for verify
     * events, a notification run for Notify message events. An event for a run that has closed, or
     * that names no run of ours, is recorded in the result, not retried.
     */
    async deliverEvent(event: WebhookEvent): Promise<IngestResult> {
      const base = { eventId: event.id, type: event.type };
      const route = routeOf(event);
      if (!route) return { ...base, disposition: 'informational' };
      const { workflowId } = route;
      // Only our own runs are signalled, whatever a correlation ID says.
      if (!workflowId?.startsWith(route.prefix)) return { ...base, disposition: 'unknown_target' };
      const handle = client.workflow.getHandle(workflowId);
      return runActivityCall(async (signal) => {
        try {
          await client.withAbortSignal(signal, () =>
            route.kind === 'verification'
              ? handle.signal(deliveryStatusSignal, route.report)
              : handle.signal(messageStatusSignal, route.report),
          );
          return { ...base, workflowId, disposition: 'applied' as const };
        } catch (error) {
          if (error instanceof WorkflowNotFoundError)
            return { ...base, workflowId, disposition: 'window_closed' as const };
          throw error;
        }
      });
    },
  };
}

/** The ingest activity. */
export type IngestActivities = ReturnType<typeof createIngestActivities>;

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
