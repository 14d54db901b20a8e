/**
 * The activities a window calls Prelude (and the target's limits) through. How depends on when the
 * window was started: windows keep the calls their histories recorded, whatever the current defaults.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  legacyLifecycleOptions,
  lifecycleOptions,
  predictRetry,
  reservationAttemptTimeoutMs,
  reservationRetry,
  sideCallOptions,
} from './retry-policies';
import type { LifecycleCallSettings } from './verification-messages';

/** The proxies a window's lifecycle steps call. */
export type LifecycleCalls = ReturnType<typeof lifecycleCalls>;

/**
 * The calls a user waits on (see `lifecycleRetry` for why so few attempts). Local by default: the
 * call runs inside the workflow task that took the request, with no task dispatch.
 */
export function lifecycleCalls(settings: LifecycleCallSettings | undefined) {
  if (!settings) {
    // Windows started before call settings existed: regular activities, 15 s attempts, 3 of them;
    // Watch predict with the side calls' retries (it is safe to repeat).
    const legacy = proxyActivities<Activities>(legacyLifecycleOptions);
    return {
      create: legacy,
      check: legacy,
      predict: proxyActivities<Activities>(sideCallOptions),
      reserve: legacy,
    };
  }
  const proxy = settings.mode === 'local' ? proxyLocalActivities<Activities> : proxyActivities<Activities>;
  return {
    create: proxy(lifecycleOptions(settings.attemptTimeoutMs)),
    // Checks are always regular activities: their scheduling is in history before Prelude is
    // called, so a check cut short by a worker crash comes back as attempt 2 and its answer is read
    // as a retry's. A local check re-run after a crash would look like a first attempt, and a right
    // code that Prelude accepted just before the crash would read as expired.
    check: proxyActivities<Activities>(lifecycleOptions(settings.attemptTimeoutMs)),
    predict: proxy(lifecycleOptions(settings.attemptTimeoutMs, predictRetry)),
    reserve: proxy({ startToCloseTimeout: reservationAttemptTimeoutMs, retry: reservationRetry }),
  };
}
