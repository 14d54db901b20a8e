/**
 * The per-target limits entity: counts the windows and sends of one target over a sliding period,
 * durably, across every window of that target. Reservations over the limits are refused by the
 * update's validator, so a flood of refused requests writes nothing to history. It continues as new
 * when Temporal suggests it (its history grows with every grant), and ends once nothing it counts is inside the period any more.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  reserveSendUpdate,
  targetRateLimited,
  targetUsageQuery,
  type ReserveSendRequest,
  type TargetLimits,
  type TargetLimitsInput,
  type TargetUsage,
} from './target-limits-messages';

/** Reservation IDs kept for deduplication: more than a period's worth of sends at any sane limit. */
const recentKept = 200;

/** The limits entity of one target. */
export async function targetLimitsWorkflow(input: TargetLimitsInput): Promise<void> {
  let windows = input.windows ?? [];
  let sends = input.sends ?? [];
  const recent = input.recent ?? [];
  let limits: TargetLimits | undefined = input.limits;
  let changed = 0;

  const periodMs = (of: TargetLimits | undefined = limits) => (of?.periodSeconds ?? 0) * 1000;
  const inPeriod = (times: number[], of?: TargetLimits) => times.filter((t) => t > Date.now() - periodMs(of));
  const prune = () => {
    windows = inPeriod(windows);
    sends = inPeriod(sends);
  };
  // Read-only: it answers queries too, which must not change state.
  const usage = (): TargetUsage => {
    const counted = { windows: inPeriod(windows), sends: inPeriod(sends) };
    const oldest = Math.min(...counted.windows, ...counted.sends);
    return {
      windowsUsed: counted.windows.length,
      windowsLeft: Math.max(0, (limits?.maxWindows ?? 0) - counted.windows.length),
      sendsUsed: counted.sends.length,
      sendsLeft: Math.max(0, (limits?.maxSends ?? 0) - counted.sends.length),
      nextReleaseAt: Number.isFinite(oldest) ? new Date(oldest + periodMs()).toISOString() : undefined,
    };
  };
  /** Seconds until the oldest of `times` leaves the period, freeing one place. */
  const retryAfterSeconds = (times: number[], of: TargetLimits) =>
    Math.max(1, Math.ceil((Math.min(...times) + periodMs(of) - Date.now()) / 1000));

  setHandler(targetUsageQuery, usage);
  setHandler(
    reserveSendUpdate,
    (request: ReserveSendRequest): TargetUsage => {
      limits = request.limits;
      prune();
      if (!recent.includes(request.reservationId)) {
        recent.push(request.reservationId);
        if (recent.length > recentKept) recent.shift();
        if (request.opensWindow) windows.push(Date.now());
        sends.push(Date.now());
        changed += 1;
      }
      return usage();
    },
    {
      // A validator must not change state (a refused update leaves no history to replay it from).
      validator: ({ reservationId, opensWindow, limits: asked }: ReserveSendRequest) => {
        if (recent.includes(reservationId)) return;
        const refuse = (what: string, times: number[]) => {
          throw ApplicationFailure.create({
            type: targetRateLimited,
            message: `this target has used its ${what} for the period`,
            nonRetryable: true,
            details: [{ retryAfterSeconds: retryAfterSeconds(times, asked) }],
          });
        };
        const counted = { windows: inPeriod(windows, asked), sends: inPeriod(sends, asked) };
        if (opensWindow && counted.windows.length >= asked.maxWindows) refuse('windows', counted.windows);
        if (counted.sends.length >= asked.maxSends) refuse('sends', counted.sends);
      },
    },
  );

  // Lives while something it counts is inside the period; each grant restarts the wait.
  for (;;) {
    const seen = changed;
    prune();
    const last = Math.max(...windows, ...sends);
    if (!Number.isFinite(last)) break;
    await condition(
      () => changed !== seen || workflowInfo().continueAsNewSuggested,
      last + periodMs() - Date.now(),
    );
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof targetLimitsWorkflow>({
        targetKey: input.targetKey,
        windows,
        sends,
        recent,
        limits,
      });
    }
  }
  await condition(allHandlersFinished);
}
