/**
 * Activities run by a test as a worker would run a task Temporal just handed over. The SDK's mock
 * dates every task 1 ms after the epoch, and the stall fence (activities/stall-fence.ts) refuses a
 * call for a task that began before the process's latest stall: under a mock task, any stall of
 * half a second the test process ever had (a loaded CI machine) refused the call.
 */
import { MockActivityEnvironment } from '@temporalio/testing';

/** A mock activity environment on `taskQueue` whose task began now. */
export function activityEnvironmentNow(taskQueue: string): MockActivityEnvironment {
  const now = Date.now();
  return new MockActivityEnvironment({
    taskQueue,
    scheduledTimestampMs: now,
    currentAttemptScheduledTimestampMs: now,
  });
}
