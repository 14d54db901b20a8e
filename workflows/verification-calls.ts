/** The activities a window calls Prelude (and the target's limits) through. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  historyReadOptions,
  lifecycleAttemptOptions,
  predictOptions,
  reserveAndCreateOptions,
  reservationAttemptTimeoutMs,
  reservationRetry,
  sendHistoryReadOptions,
} from './retry-policies';
import type { LifecycleCallSettings } from './verification-messages';

/** The proxies a window's lifecycle steps call. */
export type LifecycleCalls = ReturnType<typeof lifecycleCalls>;

/**
 * The calls a user waits on. Local by default: the call runs inside the workflow task that took the
 * request, with no task dispatch. Create and check are single attempts: the window makes the
 * attempts itself (call-attempts.ts).
 */
export function lifecycleCalls(settings: LifecycleCallSettings) {
  const proxy = settings.mode === 'local' ? proxyLocalActivities<Activities> : proxyActivities<Activities>;
  return {
    create: proxy(lifecycleAttemptOptions(settings.attemptTimeoutMs)),
    send: proxy(reserveAndCreateOptions(settings.attemptTimeoutMs)),
    // Checks are always regular activities: their scheduling is in history before Prelude is
    // called, so a check cut short by a worker crash ends as a timed-out attempt that the window
    // knows may have been applied. A local check re-run after a crash would look like a first
    // attempt, and a right code that Prelude accepted just before the crash would read as expired.
    check: proxyActivities<Activities>(lifecycleAttemptOptions(settings.attemptTimeoutMs)),
    predict: proxy(predictOptions(settings.attemptTimeoutMs)),
    // Prelude's record of a verification, read only after a check's or a send's answer was lost.
    history: proxy(historyReadOptions(settings.attemptTimeoutMs)),
    sendHistory: proxy(sendHistoryReadOptions(settings.attemptTimeoutMs)),
    // The target's limits entity: reservations, and closed windows' reports.
    entity: proxy({ startToCloseTimeout: reservationAttemptTimeoutMs, retry: reservationRetry }),
  };
}
