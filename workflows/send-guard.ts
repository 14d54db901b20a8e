/**
 * A send guard entity: one shard of a country's SMS budget, with the per-IP, per-device and
 * per-block counts of the sends routed to it (a number's block picks its shard, so one block is
 * always counted in one place). Every decision is taken in the update's validator, which must not
 * change state: a refused send leaves nothing in history. A send its window then refused is given
 * back (the `releaseGuard` signal): its counts are removed, and the shard answers that number as
 * the window did while that answer holds. It continues as new while its history is still short to
 * replay (see shardRunEvents), and ends once nothing it counts is inside its period and no operator
 * budget is set.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  guardRefusal,
  guardSendUpdate,
  guardUsageQuery,
  releaseGuardSignal,
  resetGuardUpdate,
  setBudgetUpdate,
  type BudgetOverride,
  type GuardFlag,
  type GuardRelease,
  type GuardRequest,
  type NumberRefusal,
  shardRunEvents,
  type SendGuardInput,
  type ShardLimits,
  type ShardUsage,
  type Timeline,
  bytesPerSend,
  carriedBytesLimit,
  givenBackPerNumber,
} from './send-guard-messages';
import { remember } from './recent-ids';
import {
  ascending,
  countAfter,
  dropUntil,
  earliestAfter,
  earliestOf,
  firstAfter,
  latestOf,
  liveLists,
  removeAt,
} from './timelines';

type Blocks = NonNullable<SendGuardInput['blocks']>;

const atOf = (seen: { at: number }) => seen.at;

/** How long the shard keeps a send's time: the longer of the budget's two periods. */
const sendsKeptSeconds = (of: ShardLimits) => Math.max(of.budget.periodSeconds, of.budget.burstSeconds);

/** Request IDs kept for deduplication. */
const recentKept = 500;

/**
 * How often an update also drops what left its period under every key, not only its own: a sweep
 * costs what the shard counts, so it runs at most this often, and memory stays within a minute of
 * what the periods hold.
 */
const sweepEveryMs = 60_000;

/** The shortest wait of a full shard before it sweeps again (each wait is a timer, a billed action). */
const fullRecheckMs = 5_000;

/** Each key's times, ascending. */
const ascendingTimeline = (timeline: Timeline): Timeline =>
  Object.fromEntries(Object.entries(timeline).map(([key, times]) => [key, ascending(times)]));

/** The guard entity of one country shard. */
export async function sendGuardWorkflow(input: SendGuardInput): Promise<void> {
  // Every list is kept ascending by time, so that an update counts by binary search (timelines.ts):
  // its cost does not grow with the sends the shard has counted.
  let sends = ascending(input.sends ?? []);
  let ips: Timeline = ascendingTimeline(input.ips ?? {});
  let devices: Timeline = ascendingTimeline(input.devices ?? {});
  let blocks: Blocks = Object.fromEntries(
    Object.entries(input.blocks ?? {}).map(([block, seen]) => [block, ascending(seen, atOf)]),
  );
  const recent = input.recent ?? [];
  let givenBack: Timeline = ascendingTimeline(input.givenBack ?? {});
  let refusals: Record<string, NumberRefusal> = { ...input.refusals };
  let limits: ShardLimits | undefined = input.limits;
  let override: BudgetOverride | undefined = input.override;
  let changed = false;
  let sweptAt = Date.now();
  /** The state's size as continue-as-new would carry it: measured at each sweep, estimated between. */
  let carriedBytes = 0;
  /** The state is as large as the shard can carry: sends are refused until a sweep frees room. */
  let full = false;
  let fullnessLogged = false;
  const measureCarried = () => {
    carriedBytes = JSON.stringify({ sends, ips, devices, blocks, recent, givenBack, refusals }).length;
    full = carriedBytes + bytesPerSend > carriedBytesLimit;
    if (!full) fullnessLogged = false;
  };
  measureCarried();
  /** The history's size when this run started: mostly the state it was handed. */
  const startedBytes = workflowInfo().historySize;
  /** Whether this run is long enough to hand over to a new one (see shardRunEvents). */
  const runIsLong = () => {
    const { continueAsNewSuggested, historyLength, historySize } = workflowInfo();
    if (continueAsNewSuggested) return true;
    return (
      input.runEvents !== undefined && historyLength >= input.runEvents && historySize >= 3 * startedBytes
    );
  };

  const now = () => Date.now();
  const since = (seconds: number) => now() - seconds * 1000;
  const activeOverride = () =>
    override && (!override.until || Date.parse(override.until) > now()) ? override : undefined;
  const budgetOf = (of: ShardLimits) => {
    const lifted = activeOverride();
    return lifted ? { ...of.budget, sends: lifted.sends, burst: lifted.burst } : of.budget;
  };
  /** Seconds until `earliest` leaves a period of `seconds`. */
  const retryAfter = (earliest: number, seconds: number) =>
    Math.max(1, Math.ceil((earliest + seconds * 1000 - now()) / 1000));

  const usage = (): ShardUsage => {
    const budget = limits ? budgetOf(limits) : undefined;
    const used = budget ? countAfter(sends, since(budget.periodSeconds)) : sends.length;
    return {
      sendsUsed: used,
      sendsLeft: Math.max(0, (budget?.sends ?? 0) - used),
      burstUsed: budget ? countAfter(sends, since(budget.burstSeconds)) : 0,
      // Keys an update has not swept yet may hold only times out of their period: not counted.
      blocks: limits
        ? liveLists(Object.values(blocks), since(limits.block.periodSeconds), atOf)
        : Object.keys(blocks).length,
      ips: limits ? liveLists(Object.values(ips), since(limits.ip.periodSeconds)) : Object.keys(ips).length,
      devices: limits
        ? liveLists(Object.values(devices), since(limits.device.periodSeconds))
        : Object.keys(devices).length,
      ...(activeOverride() ? { override: activeOverride() } : {}),
    };
  };

  /** Drops the times of `key` in `timeline` that left a period of `seconds`, and the key once empty. */
  const pruneKey = <T>(
    timeline: Record<string, T[]>,
    key: string,
    seconds: number,
    timeOf?: (item: T) => number,
  ) => {
    const times = timeline[key];
    if (times && !dropUntil(times, since(seconds), timeOf)) delete timeline[key];
  };
  /** Drops a number's last refusal once neither its cooldown nor its give-backs count. */
  const pruneRefusal = (key: string) => {
    const until = refusals[key]?.until ?? -Infinity;
    if (!givenBack[key] && until <= now()) delete refusals[key];
  };
  /** Drops the sends that left both budget periods, and an override that ended. */
  const pruneShared = (of: ShardLimits) => {
    dropUntil(sends, since(sendsKeptSeconds(of)));
    if (override?.until && Date.parse(override.until) <= now()) override = undefined;
  };
  /** Drops everything that left its period, under every key. */
  const prune = (of: ShardLimits) => {
    pruneShared(of);
    for (const key of Object.keys(ips)) pruneKey(ips, key, of.ip.periodSeconds);
    for (const key of Object.keys(devices)) pruneKey(devices, key, of.device.periodSeconds);
    for (const block of Object.keys(blocks)) pruneKey(blocks, block, of.block.periodSeconds, atOf);
    for (const key of Object.keys(givenBack)) pruneKey(givenBack, key, of.budget.burstSeconds);
    for (const key of Object.keys(refusals)) pruneRefusal(key);
    sweptAt = now();
    measureCarried();
  };
  /** When the first of the shard's counts leaves its period. */
  const firstCountEnds = (of: ShardLimits) =>
    Math.min(
      earliestOf([sends]) + sendsKeptSeconds(of) * 1000,
      earliestOf(Object.values(ips)) + of.ip.periodSeconds * 1000,
      earliestOf(Object.values(devices)) + of.device.periodSeconds * 1000,
      earliestOf(Object.values(blocks), atOf) + of.block.periodSeconds * 1000,
      earliestOf(Object.values(givenBack)) + of.budget.burstSeconds * 1000,
    );
  /** What an update drops: under its own keys, and everywhere once a sweep is due. */
  const pruneFor = (request: GuardRequest) => {
    const of = request.limits;
    if (now() - sweptAt >= sweepEveryMs) return prune(of);
    pruneShared(of);
    if (request.ipKey) pruneKey(ips, request.ipKey, of.ip.periodSeconds);
    if (request.deviceKey) pruneKey(devices, request.deviceKey, of.device.periodSeconds);
    pruneKey(blocks, request.block, of.block.periodSeconds, atOf);
    pruneKey(givenBack, request.numberKey, of.budget.burstSeconds);
    pruneRefusal(request.numberKey);
  };

  /**
   * Whether the request's number is a new one in a block that has seen its share of numbers, and
   * the earliest time the block counts.
   */
  const blockFull = ({ block, numberKey, limits: of }: GuardRequest) => {
    const seen = blocks[block] ?? [];
    const first = firstAfter(seen, since(of.block.periodSeconds), atOf);
    const numbers = new Set<string>();
    for (let i = first; i < seen.length; i++) numbers.add(seen[i]!.key);
    return {
      full: !numbers.has(numberKey) && numbers.size >= of.block.numbers,
      earliest: seen[first]?.at ?? now(),
    };
  };

  setHandler(guardUsageQuery, usage);
  setHandler(
    guardSendUpdate,
    (request: GuardRequest) => {
      limits = request.limits;
      pruneFor(request);
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
      // Estimated until it may be near the limit; measured then, so that an estimate never refuses.
      carriedBytes += bytesPerSend;
      if (carriedBytes + bytesPerSend > carriedBytesLimit) measureCarried();
      return { flags, at };
    },
    {
      // A validator must not change state (a refused update leaves no history to replay it from).
      validator: (request: GuardRequest) => {
        if (recent.includes(request.requestId)) return;
        const of = request.limits;
        const refuse = (type: string, message: string, earliest: number, seconds: number) => {
          throw ApplicationFailure.create({
            type,
            message,
            nonRetryable: true,
            details: [{ retryAfterSeconds: retryAfter(earliest, seconds) }],
          });
        };
        /** Refuses when ascending `times` already hold `limit` events within `seconds`. */
        const cap = (
          type: string,
          message: string,
          times: number[] | undefined,
          limit: number,
          seconds: number,
        ) => {
          const cutoff = since(seconds);
          if (countAfter(times, cutoff) >= limit)
            refuse(type, message, earliestAfter(times, cutoff)!, seconds);
        };
        // First: the number's own window already said no, and would again.
        const refused = refusals[request.numberKey];
        if (refused) {
          if (refused.until !== undefined && now() < refused.until) {
            refuse(refused.type, refused.message, refused.until, 0);
          }
          cap(
            refused.type,
            refused.message,
            givenBack[request.numberKey],
            givenBackPerNumber,
            of.budget.burstSeconds,
          );
        }
        const budget = budgetOf(of);
        const { countryBudget } = guardRefusal;
        if (full && sends.length > 0) {
          if (!fullnessLogged) {
            // Once each time it fills: the operator's sign that this country needs more shards.
            log.warn(
              'send guard shard full: refusing sends until counts leave their period; raise GUARD_SHARDS',
              {
                country: input.country,
                shard: input.shard,
                counted: sends.length,
                carriedBytes,
              },
            );
            // Only a log line's flag: nothing a decision or a replay reads.
            fullnessLogged = true;
          }
          refuse(
            countryBudget,
            "this country's SMS budget is used for the period",
            sends[0]!,
            budget.periodSeconds,
          );
        }
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
          const { full: blockIsFull, earliest } = blockFull(request);
          if (blockIsFull) {
            refuse(
              guardRefusal.block,
              'too many different numbers of this range right now',
              earliest,
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
  setHandler(releaseGuardSignal, (release: GuardRelease) => {
    // Only a grant this shard gave and has not taken back: a release delivered twice is applied
    // once, and the request, asked again, is counted again (it may send then).
    const index = recent.indexOf(release.requestId);
    if (index < 0) return;
    recent.splice(index, 1);
    const { at } = release;
    removeAt(sends, at);
    // Prelude failed the send: only the country's budget comes back (see GuardRelease).
    if (!release.refusal) return;
    /** Removes the grant's entry under `key`, and the key once it holds nothing. */
    const removeKeyed = <T>(
      timeline: Record<string, T[]>,
      key: string | undefined,
      matches?: (item: T) => boolean,
      timeOf?: (item: T) => number,
    ) => {
      const items = key === undefined ? undefined : timeline[key];
      if (items && removeAt(items, at, matches, timeOf) && items.length === 0) delete timeline[key!];
    };
    removeKeyed(ips, release.ipKey);
    removeKeyed(devices, release.deviceKey);
    removeKeyed(blocks, release.block, (entry) => entry.key === release.numberKey, atOf);
    (givenBack[release.numberKey] ??= []).push(now());
    const { type, message, retryAfterSeconds } = release.refusal;
    refusals[release.numberKey] = {
      type,
      message,
      ...(retryAfterSeconds ? { until: now() + retryAfterSeconds * 1000 } : {}),
    };
  });
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
    givenBack = {};
    refusals = {};
    measureCarried();
    changed = true;
    return usage();
  });

  // Lives while something it counts is inside its period, or an operator's budget is set. A grant
  // does not wake it (one timer per wait): when the wait ends, it looks again.
  // Started by the request it is to count (Update-with-Start): wait for it before judging emptiness.
  await condition(() => limits !== undefined || override !== undefined || changed, '1 minute');
  for (;;) {
    if (runIsLong()) {
      await condition(allHandlersFinished);
      // The next run carries only what is still inside its period.
      if (limits) prune(limits);
      await continueAsNew<typeof sendGuardWorkflow>({
        country: input.country,
        shard: input.shard,
        sends,
        ips,
        devices,
        blocks,
        recent,
        givenBack,
        refusals,
        limits,
        override,
        runEvents: shardRunEvents,
      });
    }
    if (limits) prune(limits);
    changed = false;
    const wasFull = full;
    const longest = limits
      ? Math.max(
          limits.budget.periodSeconds,
          limits.budget.burstSeconds,
          limits.ip.periodSeconds,
          limits.device.periodSeconds,
          limits.block.periodSeconds,
        ) * 1000
      : 0;
    // Each list is ascending: its last time is its latest (and no spread of them all into
    // Math.max, which throws past ~100,000 arguments).
    const last = Math.max(
      latestOf([sends]),
      latestOf(Object.values(ips)),
      latestOf(Object.values(devices)),
      latestOf(Object.values(blocks), atOf),
      latestOf(Object.values(givenBack)),
    );
    if (!Number.isFinite(last) && !override) break;
    // An override without an end keeps the shard alive until the operator removes it.
    const overrideEnd = override ? (override.until ? Date.parse(override.until) : Infinity) : -Infinity;
    const lastCountEnds = Math.max(Number.isFinite(last) ? last + longest : -Infinity, overrideEnd);
    // A full shard sweeps again once something it counts leaves its period: no grant comes to sweep
    // it while it refuses.
    const wakeAt = full && limits ? Math.max(firstCountEnds(limits), now() + fullRecheckMs) : lastCountEnds;
    // Filling up wakes it too, to set that timer.
    const woken = () => changed || runIsLong() || full !== wasFull;
    if (wakeAt === Infinity) {
      await condition(woken);
    } else {
      await condition(woken, Math.max(1, wakeAt - now()));
    }
  }
  await condition(allHandlersFinished);
}
