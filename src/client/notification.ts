/**
 * Helpers for Notify messages followed to delivery: each message is a `notificationWorkflow` run
 * whose result says whether it was delivered.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Config } from '../../temporal.config';
import { notificationWorkflow } from '../../workflows';
import {
  notificationIdPrefix,
  notificationStateQuery,
  outcomeSearchAttribute,
  type NotificationState,
} from '../../workflows/messages';
import { notifySendRequestSchema } from '../prelude/schemas';
import { call, readState, toVerificationError, type CallOptions, type CallSettings } from './calls';
import { parse } from './input';

/**
 * Where notification runs go, how long they wait for a delivery report, and the deadline of each
 * call. Every helper takes them explicitly: an entry point builds them with
 * {@link notificationClientOptions}.
 */
export interface NotificationClientOptions extends CallOptions {
  /** Task queue the worker polls (`TEMPORAL_TASK_QUEUE`). */
  taskQueue: string;
  /** How long a run waits for a final delivery status (`NOTIFY_DELIVERY_TIMEOUT_SECONDS`). */
  deliveryTimeoutSeconds: number;
}

/** The notification helpers' options as configured (see temporal.config.ts). */
export function notificationClientOptions(
  config: Pick<Config, 'temporal' | 'verify' | 'notify'>,
): NotificationClientOptions {
  return {
    taskQueue: config.temporal.taskQueue,
    deliveryTimeoutSeconds: config.notify.deliveryTimeoutSeconds,
    callTimeoutMs: config.verify.callTimeoutMs,
  };
}

/** What the notification helpers' calls are about. */
const notificationCall: CallSettings = { notFound: 'no notification has that ID' };

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
 * @throws VerificationError `invalid_request` for a malformed request, `unavailable`.
 */
export async function startNotification(
  client: Client,
  request: StartNotificationRequest,
  options: NotificationClientOptions,
): Promise<{ notificationId: string }> {
  const { idempotencyKey, deliveryTimeoutSeconds, ...send } = parse(startNotificationRequestSchema, request);
  const notificationId = `${notificationIdPrefix}${idempotencyKey ?? randomUUID()}`;
  try {
    await call(
      client,
      options,
      () =>
        client.workflow.start(notificationWorkflow, {
          workflowId: notificationId,
          taskQueue: options.taskQueue,
          args: [
            {
              request: send,
              deliveryTimeoutSeconds: deliveryTimeoutSeconds ?? options.deliveryTimeoutSeconds,
            },
          ],
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          typedSearchAttributes: [{ key: outcomeSearchAttribute, value: 'sending' }],
        }),
      notificationCall,
    );
  } catch (error) {
    // The key's run is there already: the message was sent (or is being sent) once.
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  return { notificationId };
}

/**
 * A notification run's state: `sending`, `sent` (waiting for delivery), then `delivered`,
 * `failed`, `unknown`, `timed_out` or `rejected` (Notify refused the send).
 *
 * @throws VerificationError `not_found` for an unknown ID, `unavailable`.
 */
export async function getNotification(
  client: Client,
  notificationId: string,
  options: CallOptions,
): Promise<NotificationState> {
  const handle = client.workflow.getHandle<typeof notificationWorkflow>(notificationId);
  return call(client, options, () => readState(handle, notificationStateQuery), notificationCall);
}

/**
 * Waits for a notification run's final state, as long as it takes (up to its delivery timeout).
 *
 * @throws VerificationError `not_found` for an unknown ID.
 */
export async function notificationResult(client: Client, notificationId: string): Promise<NotificationState> {
  try {
    return await client.workflow.getHandle<typeof notificationWorkflow>(notificationId).result();
  } catch (error) {
    throw toVerificationError(error, notificationCall);
  }
}
