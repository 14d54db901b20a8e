/**
 * A send guard entity: one shard of a country's SMS budget, with the per-IP, per-device and
 * per-block counts of the sends routed to it (a number's block picks its shard, so one block is
 * always counted in one place). Every decision is taken in the update's validator, which must not
 * change state: a refused send leaves nothing in history. It continues as new when Temporal
 * suggests it and ends once nothing it counts is inside its period and no operator budget is set.
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
  guardRefusal,
  guardSendUpdate,
  guardUsageQuery,
  resetGuardUpdate,
  setBudgetUpdate,
  type BudgetOverride,
  type GuardFlag,
  type GuardRequest,
  type SendGuardInput,
  type ShardLimits,
  type ShardUsage,
  type Timeline,
} from './send-guard-messages';
import { remember } from './recent-ids';

/** Request IDs kept for deduplication. */
const recentKept = 500;

/** The guard entity of one country shard. */
export async function sendGuardWorkflow(input: SendGuardInput): Promise<void> {
  let sends = input.sends ?? [];
  let ips: Timeline = input.ips ?? {};
  let devices: Timeline = input.devices ?? {};
  let blocks = input.blocks ?? {};
  const recent = input.recent ?? [];
  let limits: ShardLimits | undefined = input.limits;
  let override: BudgetOverride | undefined = input.override;
  let changed = false;

  const now = () => Date.now();
  const since = (seconds: number) => now() - seconds * 1000;
  const activeOverride = () =>
    override && (!override.until || Date.parse(override.until) > now()) ? override : undefined;
  const budgetOf = (of: ShardLimits) => {
    const lifted = activeOverride();
    return lifted ? { ...of.budget, sends: lifted.sends, burst: lifted.burst } : of.budget;
  };
  const within = (times: number[] | undefined, seconds: number) =>
    (times ?? []).filter((t) => t > since(seconds));
  /** Seconds until the oldest of `times` leaves a period of `seconds`. */
  const retryAfter = (times: number[], seconds: number) =>
    Math.max(1, Math.ceil((Math.min(...times) + seconds * 1000 - now()) / 1000));

  const usage = (): ShardUsage => {
    const budget = limits ? budgetOf(limits) : undefined;
    const used = budget ? within(sends, budget.periodSeconds).length : sends.length;
    return {
      sendsUsed: used,
      sendsLeft: Math.max(0, (budget?.sends ?? 0) - used),
      burstUsed: budget ? within(sends, budget.burstSeconds).length : 0,
      blocks: Object.keys(blocks).length,
      ips: Object.keys(ips).length,
      devices: Object.keys(devices).length,
      ...(activeOverride() ? { override: activeOverride() } : {}),
    };
  };

  /** Drops what left its period. */
  const prune = (of: ShardLimits) => {
    sends = within(sends, Math.max(of.budget.periodSeconds, of.budget.burstSeconds));
    const pruneTimeline = (timeline: Timeline, seconds: number): Timeline =>
      Object.fromEntries(
        Object.entries(timeline)
          .map(([key, times]) => [key, within(times, seconds)] as const)
          .filter(([, times]) => times.length > 0),
      );
    ips = pruneTimeline(ips, of.ip.periodSeconds);
    devices = pruneTimeline(devices, of.device.periodSeconds);
    blocks = Object.fromEntries(
      Object.entries(blocks)
        .map(([block, seen]) => [block, seen.filter((s) => s.at > since(of.block.periodSeconds))] as const)
        .filter(([, seen]) => seen.length > 0),
    );
    if (override?.until && Date.parse(override.until) <= now()) override = undefined;
  };

  /** Whether the request's number is a new one in a block that has seen its share of numbers. */
  const blockFull = ({ block, numberKey, limits: of }: GuardRequest) => {
    const seen = (blocks[block] ?? []).filter((s) => s.at > since(of.block.periodSeconds));
    const numbers = new Set(seen.map((s) => s.key));
    return {
      full: !numbers.has(numberKey) && numbers.size >= of.block.numbers,
      times: seen.map((s) => s.at),
    };
  };

  setHandler(guardUsageQuery, usage);
  setHandler(
    guardSendUpdate,
    (request: GuardRequest) => {
      limits = request.limits;
      prune(limits);
      const flags: GuardFlag[] = [];
      if (recent.includes(request.requestId)) return { flags };
      remember(recent, request.requestId, recentKept);
      const at = now();
      sends.push(at);
      if (request.ipKey) (ips[request.ipKey] ??= []).push(at);
      if (request.deviceKey) (devices[request.deviceKey] ??= []).push(at);
      if (request.limits.block.mode !== 'off') {
        if (blockFull(request).full) flags.push('number_block_velocity');
        (blocks[request.block] ??= []).push({ key: request.numberKey, at });
      }
      return { flags };
    },
    {
      // A validator must not change state (a refused update leaves no history to replay it from).
      validator: (request: GuardRequest) => {
        if (recent.includes(request.requestId)) return;
        const of = request.limits;
        const refuse = (type: string, message: string, times: number[], seconds: number) => {
          throw ApplicationFailure.create({
            type,
            message,
            nonRetryable: true,
            details: [{ retryAfterSeconds: retryAfter(times, seconds) }],
          });
        };
        /** Refuses when `times` already hold `limit` events within `seconds`. */
        const cap = (
          type: string,
          message: string,
          times: number[] | undefined,
          limit: number,
          seconds: number,
        ) => {
          const counted = within(times, seconds);
          if (counted.length >= limit) refuse(type, message, counted, seconds);
        };
        const budget = budgetOf(of);
        const { countryBudget } = guardRefusal;
        cap(
          countryBudget,
          "this country's SMS budget is used for the period",
          sends,
          budget.sends,
          budget.periodSeconds,
        );
        cap(
          countryBudget,
          'too many SMS to this country right now',
          sends,
          budget.burst,
          budget.burstSeconds,
        );
        // The range first: it is the mark of pumping, whoever sends.
        if (of.block.mode === 'enforce') {
          const { full, times } = blockFull(request);
          if (full) {
            refuse(
              guardRefusal.block,
              'too many different numbers of this range right now',
              times,
              of.block.periodSeconds,
            );
          }
        }
        const ipTimes = request.ipKey ? ips[request.ipKey] : undefined;
        cap(
          guardRefusal.ip,
          'too many sends from this IP address',
          ipTimes,
          of.ip.sends,
          of.ip.periodSeconds,
        );
        const deviceTimes = request.deviceKey ? devices[request.deviceKey] : undefined;
        cap(
          guardRefusal.device,
          'too many sends from this device',
          deviceTimes,
          of.device.sends,
          of.device.periodSeconds,
        );
      },
    },
  );
  setHandler(setBudgetUpdate, (budget: BudgetOverride | null) => {
    override = budget ?? undefined;
    changed = true;
    return usage();
  });
  setHandler(resetGuardUpdate, () => {
    sends = [];
    ips = {};
    devices = {};
    blocks = {};
    changed = true;
    return usage();
  });

  // Lives while something it counts is inside its period, or an operator's budget is set. A grant
  // does not wake it (one timer per wait): when the wait ends, it looks again.
  // Started by the request it is to count (Update-with-Start): wait for it before judging emptiness.
  await condition(() => limits !== undefined || override !== undefined || changed, '1 minute');
  for (;;) {
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof sendGuardWorkflow>({
        country: input.country,
        shard: input.shard,
        sends,
        ips,
        devices,
        blocks,
        recent,
        limits,
        override,
      });
    }
    if (limits) prune(limits);
    changed = false;
    const times = [...sends, ...Object.values(ips).flat(), ...Object.values(devices).flat()];
    const blockTimes = Object.values(blocks).flatMap((seen) => seen.map((s) => s.at));
    const longest = limits
      ? Math.max(
          limits.budget.periodSeconds,
          limits.budget.burstSeconds,
          limits.ip.periodSeconds,
          limits.device.periodSeconds,
          limits.block.periodSeconds,
        ) * 1000
      : 0;
    const last = Math.max(...times, ...blockTimes);
    if (!Number.isFinite(last) && !override) break;
    // An override without an end keeps the shard alive until the operator removes it.
    const overrideEnd = override ? (override.until ? Date.parse(override.until) : Infinity) : -Infinity;
    const wakeAt = Math.max(Number.isFinite(last) ? last + longest : -Infinity, overrideEnd);
    if (wakeAt === Infinity) {
      await condition(() => changed || workflowInfo().continueAsNewSuggested);
    } else {
      await condition(() => changed || workflowInfo().continueAsNewSuggested, Math.max(1, wakeAt - now()));
    }
  }
  await condition(allHandlersFinished);
}
