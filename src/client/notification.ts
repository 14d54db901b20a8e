/**
 * Helpers for Notify messages followed to delivery: each message is a `notificationWorkflow` run
 * whose result says whether it was delivered.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { loadConfig } from '../../temporal.config';
import {
  notificationIdPrefix,
  notificationStateQuery,
  notificationWorkflow,
  outcomeSearchAttribute,
  type NotificationState,
} from '../../workflows';
import { notifySendRequestSchema } from '../prelude';
import { VerificationError } from './errors';

/** Where notification runs go, and how long they wait for a delivery report. */
export interface NotificationClientOptions {
  taskQueue: string;
  deliveryTimeoutSeconds: number;
}

/** `startNotification`'s request: Notify's send fields, less the correlation ID the run sets. */
export const startNotificationRequestSchema = notifySendRequestSchema.omit({ correlation_id: true }).extend({
  /** Names the run (`notification-<key>`); the same key twice is the same message, sent once. */
  idempotencyKey: z.string().min(1).max(64).optional(),
  deliveryTimeoutSeconds: z.number().int().min(1).max(86_400).optional(),
});

/** Input of {@link startNotification}. */
export type StartNotificationRequest = z.input<typeof startNotificationRequestSchema>;

/**
 * Starts a notification run: the message is sent with Notify and followed until a final delivery
 * status (or the timeout). A repeated `idempotencyKey` finds the run already there and sends nothing.
 *
 * @returns the run's ID (its workflow ID, also the message's `correlation_id`).
 * @throws VerificationError `invalid_request` for a malformed request.
 */
export async function startNotification(
  client: Client,
  request: StartNotificationRequest,
  options: NotificationClientOptions = configuredOptions(),
): Promise<{ notificationId: string }> {
  const parsed = startNotificationRequestSchema.safeParse(request);
  if (!parsed.success) {
    throw new VerificationError('invalid_request', parsed.error.issues[0]?.message ?? 'invalid request');
  }
  const { idempotencyKey, deliveryTimeoutSeconds, ...send } = parsed.data;
  const notificationId = `${notificationIdPrefix}${idempotencyKey ?? randomUUID()}`;
  try {
    await client.workflow.start(notificationWorkflow, {
      workflowId: notificationId,
      taskQueue: options.taskQueue,
      args: [
        { request: send, deliveryTimeoutSeconds: deliveryTimeoutSeconds ?? options.deliveryTimeoutSeconds },
      ],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [{ key: outcomeSearchAttribute, value: 'sending' }],
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  return { notificationId };
}

/**
 * A notification run's state: `sending`, `sent` (waiting for delivery), then `delivered`,
 * `failed`, `unknown`, `timed_out` or `rejected` (Notify refused the send).
 *
 * @throws VerificationError `not_found` for an unknown ID.
 */
export async function getNotification(client: Client, notificationId: string): Promise<NotificationState> {
  const handle = client.workflow.getHandle<typeof notificationWorkflow>(notificationId);
  try {
    const { status } = await handle.describe();
    return status.name === 'COMPLETED' ? await handle.result() : await handle.query(notificationStateQuery);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      throw new VerificationError('not_found', 'no notification has that ID');
    }
    throw error;
  }
}

/** Waits for a notification run's final state. */
export async function notificationResult(client: Client, notificationId: string): Promise<NotificationState> {
  return client.workflow.getHandle<typeof notificationWorkflow>(notificationId).result();
}

let configured: NotificationClientOptions | undefined;

function configuredOptions(): NotificationClientOptions {
  if (!configured) {
    const config = loadConfig();
    configured = {
      taskQueue: config.temporal.taskQueue,
      deliveryTimeoutSeconds: config.notify.deliveryTimeoutSeconds,
    };
  }
  return configured;
}
