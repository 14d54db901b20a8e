import type {
  NotifyBatchRequest,
  NotifyBatchResponse,
  NotifySendRequest,
  NotifySendResponse,
  PreludeClient,
} from '../src/prelude';
import { runActivityCall } from './failures';

/** What the Notify activities need. */
export interface NotifyDependencies {
  prelude: PreludeClient;
  /** Where Prelude posts message webhooks (`callback_url`), unless a request names its own. */
  callbackUrl?: string;
}

/** Builds the Notify activities around a Prelude client. */
export function createNotifyActivities({ prelude, callbackUrl }: NotifyDependencies) {
  const withCallback = <T extends { callback_url?: string }>(request: T): T =>
    request.callback_url || !callbackUrl ? request : { ...request, callback_url: callbackUrl };
  return {
    /** Sends one templated message. */
    async sendNotification(request: NotifySendRequest): Promise<NotifySendResponse> {
      return runActivityCall((signal) => prelude.notify.send(withCallback(request), { signal }));
    },

    /** Sends one templated message to many recipients; per-recipient failures are in the answer. */
    async sendNotificationBatch(request: NotifyBatchRequest): Promise<NotifyBatchResponse> {
      return runActivityCall((signal) => prelude.notify.sendBatch(withCallback(request), { signal }));
    },
  };
}

/** The Notify activities. */
export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
