/**
 * A worker process that stalls (paused: a VM frozen or moved, a container starved of CPU, a
 * debugger) keeps the tasks it held, but Temporal does not wait for it: once a task goes past its
 * timeout without word from the worker, another worker runs it again. When the stalled process
 * resumes, it carries on where it stopped, and a call it then makes to Prelude is one nobody waits
 * for any more: a code sent after the user was verified, a check spent late. Measured with a worker
 * frozen for 10 s while another took over (`CHAOS_FREEZE_MS=10000 npm run chaos`): 4 of 60 users got
 * a code after they were verified.
 *
 * So this process watches its own event loop, and before each outside call an activity makes
 * ({@link runActivityCall}), the call is refused if the process stalled since the task that asked for
 * it began. The refusal fails the attempt as one that never reached Prelude: if the task is still
 * this worker's (a stall short enough), the window makes its next attempt in a task of its own.
 */
import { ApplicationFailure, log } from '@temporalio/activity';
import { performance } from 'node:perf_hooks';

/**
 * The shortest pause counted as a stall: below the shortest that can cost a task. A workflow task
 * (3 s timeout) is heartbeated at 80 % of it while its local calls run, so a stall of 0.6 s can let
 * it time out; a regular activity (2 s heartbeat timeout, a heartbeat every 0.5 s) needs 1.5 s.
 */
export const stallMs = 500;

/** How often the event loop is looked at. */
const tickMs = 100;

/** The failure type of a call refused after a stall (see the module comment). */
export const stalledType = 'WorkerStalled';

let lastTick: number | undefined;
/** `Date.now()` when the latest stall was noticed (its end), if any, and how long it was. */
let lastStallEndedAt: number | undefined;
let lastStallLength = 0;

/** Notes a stall since the previous look, if there was one. */
function look(): void {
  const now = performance.now();
  if (lastTick !== undefined && now - lastTick > stallMs) {
    lastStallEndedAt = Date.now();
    lastStallLength = Math.round(now - lastTick);
  }
  lastTick = now;
}

/**
 * Starts watching this process's event loop (once; the watch never keeps the process alive). The
 * worker starts it as it begins to poll (src/stack.ts, the plugin's runWorker), so that a stall
 * before an activity's first call is seen, and one while it loads (no task held yet) is not; an
 * activity's first call starts it otherwise.
 */
export function watchForStalls(): void {
  if (lastTick !== undefined) return;
  look();
  setInterval(look, tickMs).unref();
}

/**
 * Throws a retryable failure marked `notSent` when this process stalled at or after `taskStartedAt`
 * (`Date.now()` milliseconds, as Temporal dates the task): the call must not be made.
 */
export function refuseAfterStall(taskStartedAt: number): void {
  watchForStalls();
  // When the call is what runs first after a stall, the timer has not noticed it yet.
  look();
  if (lastStallEndedAt === undefined || lastStallEndedAt < taskStartedAt) return;
  // For the operator: a worker that stalls this long is starved or paused.
  log.warn('this worker stalled; a call for a task from before the stall was not made', {
    stallMs: lastStallLength,
    stallEndedAt: new Date(lastStallEndedAt).toISOString(),
  });
  throw ApplicationFailure.create({
    type: stalledType,
    message:
      'this worker stalled after the task began, and another worker may have taken the task over: ' +
      'the call was not made',
    details: [{ notSent: true }],
  });
}
