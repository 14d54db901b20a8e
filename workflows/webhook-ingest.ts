import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ingestOptions } from './retry-policies';
import type { IngestInput, IngestResult } from './webhook-ingest-messages';

const { deliverEvent } = proxyActivities<Activities>(ingestOptions);

/**
 * Applies one Prelude webhook event to the workflow it belongs to. A workflow of its own, rather
 * than a signal sent from the HTTP handler, so that Prelude gets its 200 as soon as the event is
 * durably accepted and a redelivery of the same event ID finds the run already there.
 */
export async function webhookIngestWorkflow(event: IngestInput): Promise<IngestResult> {
  return await deliverEvent(event);
}
