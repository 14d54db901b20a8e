/**
 * The per-target limits entity: counts the windows and sends of one target over a sliding period,
 * durably, across every window of that target. Reservations over the limits are refused by the
 * update's validator, so a flood of refused requests writes nothing to history. It continues as new
 * when Temporal suggests it (its history grows with every grant), and ends once nothing it counts
 * is inside the period any more and every closed window's report handed to it is made.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { makeOutcomeReport } from './outcome-report';
import {
  codesSentSignal,
  forgetReportsUpdate,
  giveBackSendUpdate,
  outcomeReportSignal,
  reserveSendUpdate,
  sendMayHaveGone,
  sendNotCounted,
  targetRateLimited,
  targetUsageQuery,
  askerEntry,
  askersOfCall,
  type ReservedSend,
  type ReserveSendRequest,
  type TargetLimits,
  type TargetLimitsInput,
  type TargetUsage,
  type UnsentSend,
  usageOf,
} from './target-limits-messages';
import { remember } from './recent-ids';

/** Reservation IDs kept for deduplication: more than a period's worth of sends at any sane limit. */
const recentKept = 200;

/** The limits entity of one target. */
export async function targetLimitsWorkflow(input: TargetLimitsInput): Promise<void> {
  let windows = input.windows ?? [];
  let sends = input.sends ?? [];
  const recent = input.recent ?? [];
  const askers = input.askers ?? [];
  const told = new Map(input.told);
  let limits: TargetLimits | undefined = input.limits;
  let reports = input.reports ?? [];
  let forgetting = false;

  const periodMs = (of: TargetLimits | undefined = limits) => (of?.periodSeconds ?? 0) * 1000;
  const inPeriod = (times: number[], of?: TargetLimits) => times.filter((t) => t > Date.now() - periodMs(of));
  const prune = () => {
    windows = inPeriod(windows);
    sends = inPeriod(sends);
  };
  // Read-only: it answers queries too, which must not change state.
  const usage = (): TargetUsage => usageOf({ windows: inPeriod(windows), sends: inPeriod(sends) }, limits);
  /** Seconds until the oldest of `times` leaves the period, freeing one place. */
  const retryAfterSeconds = (times: number[], of: TargetLimits) =>
    Math.max(1, Math.ceil((Math.min(...times) + periodMs(of) - Date.now()) / 1000));

  /**
   * Remembers who asks a reservation, and answers how many executions of the same call that the
   * asker does not know of asked it (neither its own, nor its earlier attempts').
   */
  const earlierExecutionsOf = ({ reservationId, asker }: ReserveSendRequest) => {
    if (!asker) return {};
    const { call, execution, known } = asker;
    const entry = askerEntry(reservationId, asker);
    const knownEntries = [execution, ...known].map((time) =>
      askerEntry(reservationId, { call, execution: time }),
    );
    const ofCall = askersOfCall(reservationId, call);
    const unknown = askers.filter((e) => e.startsWith(ofCall) && !knownEntries.includes(e));
    if (!askers.includes(entry)) remember(askers, entry, recentKept);
    return { earlierExecutions: unknown.length };
  };

  setHandler(targetUsageQuery, usage);
  setHandler(outcomeReportSignal, (report) => {
    // Handed over twice (the window's call retried): made once.
    if (recent.includes(report.reportId) || reports.some((r) => r.reportId === report.reportId)) return;
    reports.push(report);
  });
  setHandler(codesSentSignal, ({ reservationId, codes }) => {
    // A granted reservation counts one code, one the entity never saw (the window's every attempt
    // failed on the way) none yet; a send told before counts what it was told. Told the same again
    // (the window's call retried) or less (a run cut short told it first), it counts nothing more.
    const counted = told.get(reservationId) ?? (recent.includes(reservationId) ? 1 : 0);
    if (codes <= counted) return;
    for (let code = counted; code < codes; code += 1) sends.push(Date.now());
    if (!recent.includes(reservationId)) remember(recent, reservationId, recentKept);
    told.delete(reservationId);
    told.set(reservationId, codes);
    // Oldest first (a Map keeps its insertion order): as many as the reservation IDs kept.
    for (const [oldest] of told) {
      if (told.size <= recentKept) break;
      told.delete(oldest);
    }
  });
  setHandler(
    giveBackSendUpdate,
    ({ reservationId, opensWindow }: UnsentSend): TargetUsage => {
      recent.splice(recent.indexOf(reservationId), 1);
      // The newest count, not necessarily the reservation's own (another window of the target may
      // have reserved since): the same number counted, seconds apart at most.
      sends.pop();
      if (opensWindow) windows.pop();
      return usage();
    },
    {
      validator: ({ reservationId, asker }: UnsentSend) => {
        const refuse = (type: string, message: string) => {
          throw ApplicationFailure.create({ type, message, nonRetryable: true });
        };
        if (!recent.includes(reservationId)) refuse(sendNotCounted, 'no such send is counted');
        const known = asker.known.map((execution) =>
          askerEntry(reservationId, { call: asker.call, execution }),
        );
        const ofCall = askersOfCall(reservationId, asker.call);
        const unknownExecution = askers.some((entry) => entry.startsWith(ofCall) && !known.includes(entry));
        if (unknownExecution || told.has(reservationId)) {
          refuse(
            sendMayHaveGone,
            'an execution of this send the window does not know of may have sent a code',
          );
        }
      },
    },
  );
  setHandler(forgetReportsUpdate, () => {
    reports = [];
    forgetting = true;
  });
  setHandler(
    reserveSendUpdate,
    (request: ReserveSendRequest): ReservedSend => {
      limits = request.limits;
      prune();
      if (!recent.includes(request.reservationId)) {
        remember(recent, request.reservationId, recentKept);
        if (request.opensWindow) windows.push(Date.now());
        sends.push(Date.now());
      }
      return { ...usage(), ...earlierExecutionsOf(request) };
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

  const startAfresh = async () => {
    await condition(allHandlersFinished);
    await continueAsNew<typeof targetLimitsWorkflow>({
      targetKey: input.targetKey,
      windows,
      sends,
      recent,
      askers,
      ...(told.size > 0 ? { told: [...told] } : {}),
      limits,
      reports,
    });
  };

  // Lives while something it counts is inside the period or a report is to be made. A grant does not
  // wake it (one timer per wait, not one per send): when the wait ends, it looks again at what is
  // still counted.
  for (;;) {
    const report = reports[0];
    if (report) {
      await makeOutcomeReport(report);
      reports = reports.filter((r) => r !== report);
      remember(recent, report.reportId, recentKept);
    }
    if (forgetting || workflowInfo().continueAsNewSuggested) await startAfresh();
    if (reports.length > 0) continue;
    prune();
    const last = Math.max(...windows, ...sends);
    if (!Number.isFinite(last)) break;
    await condition(
      () => reports.length > 0 || forgetting || workflowInfo().continueAsNewSuggested,
      last + periodMs() - Date.now(),
    );
  }
  await condition(allHandlersFinished);
}
