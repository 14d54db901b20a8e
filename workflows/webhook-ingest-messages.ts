/**
 * The webhook ingest's contract. One ingest run per Prelude event (workflow ID
 * `prelude-event-<event id>`), so a redelivered event is the same run and is applied once.
 */
import type { WebhookEvent } from '../src/prelude';

/** Workflow ID of the ingest run of an event. */
export function ingestWorkflowId(eventId: string): string {
  return `prelude-event-${eventId}`;
}

/** What became of an event. */
export interface IngestResult {
  eventId: string;
  type: string;
  /** The workflow the event was routed to (from its correlation ID), if any. */
  workflowId?: string;
  /** `applied`: signalled; the others are recorded, not errors. */
  disposition: 'applied' | 'window_closed' | 'unknown_target' | 'informational';
}

/** Input of the ingest workflow: the verified, parsed event. */
export type IngestInput = WebhookEvent;
