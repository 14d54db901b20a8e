import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { isEventOf, type WebhookEvent } from '../src/prelude';
import {
  deliveryStatusSignal,
  windowIdPrefix,
  type DeliveryStatusReport,
} from '../workflows/verification-messages';
import type { IngestResult } from '../workflows/webhook-ingest-messages';

/** What the ingest activity needs: a client to signal the workflows events belong to. */
export interface IngestDependencies {
  client: Client;
}

/** Builds the ingest activity. */
export function createIngestActivities({ client }: IngestDependencies) {
  return {
    /**
     * Signals the workflow named by the event's correlation ID. An event for a window that has
     * closed, or that names no window of ours, is recorded in the result, not retried.
     */
    async deliverEvent(event: WebhookEvent): Promise<IngestResult> {
      const base = { eventId: event.id, type: event.type };
      const report = deliveryReport(event);
      if (!report) return { ...base, disposition: 'informational' };
      const workflowId = report.workflowId;
      // Only our own windows are signalled, whatever a correlation ID says.
      if (!workflowId?.startsWith(windowIdPrefix)) return { ...base, disposition: 'unknown_target' };
      try {
        await client.workflow.getHandle(workflowId).signal(deliveryStatusSignal, report.report);
        return { ...base, workflowId, disposition: 'applied' };
      } catch (error) {
        if (error instanceof WorkflowNotFoundError)
          return { ...base, workflowId, disposition: 'window_closed' };
        throw error;
      }
    },
  };
}

/** The ingest activity. */
export type IngestActivities = ReturnType<typeof createIngestActivities>;

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
