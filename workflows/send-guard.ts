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
  guardCodesSentSignal,
  releaseGuardSignal,
  resetGuardUpdate,
  setBudgetUpdate,
  type BudgetOverride,
  type GuardCodesSent,
  type GuardFlag,
  type GuardRelease,
  type GuardRequest,
  type Admission,
  type AdmissionLease,
  type LeaseExceptions,
  type LeaseRecord,
  type LeaseRequest,
  type LeasedKind,
  leasedKeysOf,
  leasedKinds,
  leaseExceptionsKept,
  leaseSeconds,
  takeLeaseUpdate,
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
  insertAscending,
  latestOf,
  liveLists,
  removeAt,
} from './timelines';

type Blocks = NonNullable<SendGuardInput['blocks']>;

const atOf = (seen: { at: number }) => seen.at;

/** How long the shard keeps a send's time: the longer of the budget's two periods. */
const sendsKeptSeconds = (of: ShardLimits) => Math.max(of.budget.periodSeconds, of.budget.burstSeconds);

/** The longest period the shard counts anything over. */
const longestPeriodSeconds = (of: ShardLimits) =>
  Math.max(
    of.budget.periodSeconds,
    of.budget.burstSeconds,
    of.ip.periodSeconds,
    of.device.periodSeconds,
    of.block.periodSeconds,
  );

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

/** What the shard counts, or would once a validator's request is applied. */
interface Counts {
  sends: number[];
  ips: Timeline;
  devices: Timeline;
  blocks: Blocks;
  leases: LeaseRecord[];
}

/** The keys a send is counted under. */
type SendKeys = Pick<GuardRequest, 'block' | 'numberKey' | 'ipKey' | 'deviceKey'>;

/**
 * Adds a send at `at` to `counts` under its keys, in time order (a lease's report arrives late);
 * with `copy`, onto copies of the lists it adds to (a validator's view: see countsWith).
 */
function addTo(
  counts: Counts,
  at: number,
  { block, numberKey, ipKey, deviceKey }: SendKeys,
  of: ShardLimits,
  { budget, copy }: { budget: boolean; copy: boolean },
): void {
  const own = <T>(list: T[] | undefined) => (copy ? [...(list ?? [])] : (list ?? []));
  if (budget) insertAscending(counts.sends, at);
  if (ipKey) insertAscending((counts.ips[ipKey] = own(counts.ips[ipKey])), at);
  if (deviceKey) insertAscending((counts.devices[deviceKey] = own(counts.devices[deviceKey])), at);
  if (of.block.mode !== 'off') {
    insertAscending((counts.blocks[block] = own(counts.blocks[block])), { key: numberKey, at }, atOf);
  }
}

/**
 * A view of `lists` that a validator adds to without changing them: a key set on the view is the
 * view's own, every other key reads through to `lists`. For reading by key only (its own keys are
 * all `Object.keys` would list).
 */
function overlayOf<T>(lists: Record<string, T>): Record<string, T> {
  return Object.create(lists) as Record<string, T>;
}

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
  let leases: LeaseRecord[] = [...(input.leases ?? [])];
  let changed = false;
  let sweptAt = Date.now();
  /** The state's size as continue-as-new would carry it: measured at each sweep, estimated between. */
  let carriedBytes = 0;
  /** The state is as large as the shard can carry: sends are refused until a sweep frees room. */
  let full = false;
  let fullnessLogged = false;
  /** What continue-as-new carries of the counts. */
  const carried = () => ({
    sends,
    ips,
    devices,
    blocks,
    recent,
    givenBack,
    refusals,
    // Only when held: a run without leases measures, and hands over, as it did before them.
    ...(leases.length > 0 ? { leases } : {}),
  });
  const measureCarried = () => {
    carriedBytes = JSON.stringify(carried()).length;
    full = carriedBytes + bytesPerSend > carriedBytesLimit;
    if (!full) fullnessLogged = false;
  };
  measureCarried();
  /**
   * The carried state grew by about `bytes`: estimated until it may be near the limit, measured then,
   * so that an estimate never refuses (it only grows: what leaves the state is counted at a measure).
   */
  const grewBy = (bytes: number) => {
    carriedBytes += bytes;
    if (carriedBytes + bytesPerSend > carriedBytesLimit) measureCarried();
  };
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

  /** The keys of a lease's exception list, as a set (built once per list). */
  const exceptionSets = new WeakMap<readonly string[], Set<string>>();
  type KeyKind = keyof LeaseExceptions;
  const excepts = (lease: LeaseRecord, kind: KeyKind, key: string) => {
    const list = lease.except[kind];
    if (list === 'all') return true;
    let set = exceptionSets.get(list);
    if (!set) exceptionSets.set(list, (set = new Set(list)));
    return set.has(key);
  };
  /** Whether sends a lease may have admitted still count in a period of `seconds`. */
  const holds = (lease: LeaseRecord, seconds: number) => now() < lease.until + seconds * 1000;
  /**
   * The sends the leases hold in reserve for one key (one each that does not except it), but the
   * reserve the request's own lease lends it (see GuardRequest.leaseTakes).
   */
  const heldFor = (
    kind: LeasedKind,
    key: string,
    seconds: number,
    of: Counts = counts(),
    request?: GuardRequest,
  ) => {
    const lent =
      request &&
      (request.leaseTakes?.includes(kind) ||
        request.interim?.some((admission) => leasedKeysOf(admission)[kind] === key))
        ? ownLease(request)
        : undefined;
    return of.leases.filter(
      (lease) =>
        lease !== lent &&
        holds(lease, seconds) &&
        !excepts(lease, kind, key) &&
        !lease.taken?.[kind]?.includes(key),
    ).length;
  };
  /** The budget's units the leases reserve in a period of `seconds`, less the one `own` lends this send. */
  const reserved = (seconds: number, own?: LeaseRecord, of: Counts = counts(), request?: GuardRequest) =>
    of.leases.reduce((sum, lease) => (holds(lease, seconds) ? sum + lease.units : sum), 0) -
    (own ? Math.min(own.units, 1 + unitsReported(request)) : 0);
  /** The lease units a request's interim report spends: one each admission counted now, but a returned one. */
  const unitsReported = (request: GuardRequest | undefined) =>
    (request?.interim ?? []).filter(
      (admission) => admission.budgetReturned !== true && !recent.includes(admission.requestId),
    ).length;
  /** What the shard counts now. */
  const counts = (): Counts => ({ sends, ips, devices, blocks, leases });
  /**
   * What it would count once `reports` are applied, for a validator, which must not change state:
   * the lists the reports add to are copied, the others shared. The keyed lists are read through a
   * view whose own keys are the copies and whose prototype is the shard's state: a validator reads
   * them by key only, and a copy of every key (thousands, in a busy shard's hour) would cost each
   * send that carries a report milliseconds the shard's other sends wait for.
   */
  const countsWith = ({ lease, interim = [], limits: of }: GuardRequest): Counts => {
    const reports = lease?.reports ?? [];
    if (reports.length === 0 && interim.length === 0) return counts();
    const ended = new Set(reports.map((report) => report.leaseId));
    const view: Counts = {
      sends: [...sends],
      ips: overlayOf(ips),
      devices: overlayOf(devices),
      blocks: overlayOf(blocks),
      leases: leases.filter((lease) => !ended.has(lease.leaseId)),
    };
    for (const admission of [...reports.flatMap((report) => report.admissions), ...interim]) {
      if (recent.includes(admission.requestId)) continue;
      addTo(view, admission.at, admission, of, { budget: admission.budgetReturned !== true, copy: true });
    }
    return view;
  };
  /** The asking process's lease, when the send is one of its units. */
  const ownLease = ({ leaseId }: GuardRequest) =>
    leaseId === undefined
      ? undefined
      : leases.find((lease) => lease.leaseId === leaseId && lease.units > 0 && now() < lease.until);

  const usage = (): ShardUsage => {
    const budget = limits ? budgetOf(limits) : undefined;
    const used = budget ? countAfter(sends, since(budget.periodSeconds)) : sends.length;
    const leased = budget ? reserved(budget.periodSeconds) : 0;
    return {
      sendsUsed: used,
      sendsLeft: Math.max(0, (budget?.sends ?? 0) - used - leased),
      ...(leased > 0 ? { leased } : {}),
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
    if (leases.length > 0) leases = leases.filter((lease) => holds(lease, longestPeriodSeconds(of)));
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

  /** A block's entries, and the index of its first inside the block's period. */
  const blockInPeriod = (block: string, of: ShardLimits, view: Counts = counts()) => {
    const seen = view.blocks[block] ?? [];
    return { seen, first: firstAfter(seen, since(of.block.periodSeconds), atOf) };
  };
  /** The numbers a block counts in its period, and the earliest time it counts. */
  const blockNumbers = (block: string, of: ShardLimits, view: Counts = counts()) => {
    const { seen, first } = blockInPeriod(block, of, view);
    const numbers = new Set<string>();
    for (let i = first; i < seen.length; i++) numbers.add(seen[i]!.key);
    return { numbers, earliest: seen[first]?.at ?? now() };
  };
  /**
   * Whether the request's number is a new one in a block that has seen its share of numbers (the
   * leases' reserve included), and the earliest time the block counts.
   */
  const blockFull = (request: GuardRequest, view: Counts = counts()) => {
    const { block, numberKey, limits: of } = request;
    const { numbers, earliest } = blockNumbers(block, of, view);
    const held = heldFor('blocks', block, of.block.periodSeconds, view, request);
    return { full: !numbers.has(numberKey) && numbers.size + held >= of.block.numbers, earliest };
  };

  /** Counts a send at `at` under its keys (in time order: a lease's report arrives late). */
  const count = (at: number, keys: SendKeys, of: ShardLimits, { budget }: { budget: boolean }) => {
    addTo(counts(), at, keys, of, { budget, copy: false });
    grewBy(bytesPerSend);
  };
  /** Counts a send a lease admitted, as if granted here, once (a report repeated is not counted again). */
  const countReported = (admission: Admission, of: ShardLimits) => {
    if (recent.includes(admission.requestId)) return;
    remember(recent, admission.requestId, recentKept);
    count(admission.at, admission, of, { budget: admission.budgetReturned !== true });
  };
  /** Applies reports: each lease ends, and what it admitted is counted. */
  const applyReports = (reports: LeaseRequest['reports'], of: ShardLimits) => {
    for (const report of reports) {
      leases = leases.filter((lease) => lease.leaseId !== report.leaseId);
      for (const admission of report.admissions) countReported(admission, of);
    }
  };
  /** Grants a lease of at most `wanted` units (none past the budget, or when full). */
  const grantLease = (leaseId: string, wanted: number, of: ShardLimits): AdmissionLease => {
    // The same request again (its answer lost) replaces the lease it was granted.
    leases = leases.filter((lease) => lease.leaseId !== leaseId);
    const budget = budgetOf(of);
    const left = Math.min(
      budget.sends - countAfter(sends, since(budget.periodSeconds)) - reserved(budget.periodSeconds),
      budget.burst - countAfter(sends, since(budget.burstSeconds)) - reserved(budget.burstSeconds),
    );
    const units = full ? 0 : Math.min(wanted, left);
    if (units <= 0) {
      return { leaseId, units: 0, seconds: 0, except: { numbers: [], ips: [], devices: [], blocks: [] } };
    }
    const lease: LeaseRecord = {
      leaseId,
      units,
      until: now() + leaseSeconds * 1000,
      except: exceptionsFor(of),
    };
    leases.push(lease);
    // The lease's own bytes: serializing the whole state at each grant took a shard counting 5,000
    // sends 11 ms (bench:guards' state part).
    grewBy(JSON.stringify(lease).length);
    return { leaseId, units, seconds: leaseSeconds, except: lease.except, grantedAt: now() };
  };

  /**
   * The keys a new lease may not admit on its own: those one more send could take past their cap,
   * counting what every other lease holds in reserve for them; every key of a kind when a key
   * unseen could (more holders than the cap), or when they are too many to list.
   */
  const exceptionsFor = (of: ShardLimits): LeaseExceptions => {
    const near = (
      kind: LeasedKind,
      keys: string[],
      countOf: (key: string) => number,
      limit: number,
      seconds: number,
      atMost: (key: string) => number = countOf,
    ): string[] | 'all' => {
      const holders = leases.filter((lease) => holds(lease, seconds) && lease.except[kind] !== 'all').length;
      if (holders + 1 > limit) return 'all';
      const listed: string[] = [];
      for (const key of keys) {
        // What other leases hold of a key is at most one each of these holders: a key that could not
        // reach its cap even so is passed over without counting them (nor, for a block, its distinct
        // numbers). A busy shard holds thousands of keys, nearly all of them far from their caps.
        if (atMost(key) + holders + 1 <= limit) continue;
        const counted = countOf(key);
        if (counted > 0 && counted + heldFor(kind, key, seconds) + 1 > limit) {
          listed.push(key);
          if (listed.length > leaseExceptionsKept) return 'all';
        }
      }
      return listed;
    };
    const numbers = [...new Set([...Object.keys(refusals), ...Object.keys(givenBack)])];
    return {
      numbers: numbers.length > leaseExceptionsKept ? 'all' : numbers,
      ips: near(
        'ips',
        Object.keys(ips),
        (key) => countAfter(ips[key], since(of.ip.periodSeconds)),
        of.ip.sends,
        of.ip.periodSeconds,
      ),
      devices: near(
        'devices',
        Object.keys(devices),
        (key) => countAfter(devices[key], since(of.device.periodSeconds)),
        of.device.sends,
        of.device.periodSeconds,
      ),
      blocks:
        of.block.mode === 'off'
          ? []
          : near(
              'blocks',
              Object.keys(blocks),
              (block) => blockNumbers(block, of).numbers.size,
              of.block.numbers,
              of.block.periodSeconds,
              // Its entries in the period: as many as its distinct numbers, or more.
              (block) => {
                const { seen, first } = blockInPeriod(block, of);
                return seen.length - first;
              },
            ),
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
      const of = request.limits;
      if (request.lease) applyReports(request.lease.reports, of);
      const own = ownLease(request);
      // The units its interim report spent, then this send's.
      if (own) own.units = Math.max(1, own.units - unitsReported(request));
      /** The lease's reserve of this key is a send counted now: the lease admits no more of it. */
      const take = (kind: LeasedKind, key: string | undefined) => {
        if (own && key !== undefined) ((own.taken ??= {})[kind] ??= []).push(key);
      };
      for (const admission of request.interim ?? []) {
        const keys = leasedKeysOf(admission);
        for (const kind of leasedKinds) take(kind, keys[kind]);
        countReported(admission, of);
      }
      if (of.block.mode !== 'off' && blockFull(request).full) flags.push('number_block_velocity');
      if (own) {
        own.units -= 1;
        for (const kind of request.leaseTakes ?? []) take(kind, leasedKeysOf(request)[kind]);
      }
      const at = now();
      count(at, request, of, { budget: true });
      if (!request.lease) return { flags, at };
      if (now() - sweptAt >= sweepEveryMs) prune(of);
      return { flags, at, lease: grantLease(request.lease.leaseId, request.lease.units, of) };
    },
    {
      // A validator must not change state (a refused update leaves no history to replay it from).
      validator: (request: GuardRequest) => {
        if (recent.includes(request.requestId)) return;
        const of = request.limits;
        // Judged as if the leases it reports were reported: it writes them only if granted.
        const view = countsWith(request);
        const refuse = (type: string, message: string, earliest: number, seconds: number) => {
          throw ApplicationFailure.create({
            type,
            message,
            nonRetryable: true,
            details: [{ retryAfterSeconds: retryAfter(earliest, seconds) }],
          });
        };
        /**
         * Refuses when ascending `times` already hold `limit` events within `seconds`, with the
         * `held` the leases keep in reserve.
         */
        const cap = (
          type: string,
          message: string,
          times: number[] | undefined,
          limit: number,
          seconds: number,
          held = 0,
        ) => {
          const cutoff = since(seconds);
          if (countAfter(times, cutoff) + held < limit) return;
          const earliest = earliestAfter(times, cutoff);
          // Only leases' reserve in the way: it is reported, or its lease ends, within a lease's time.
          if (earliest === undefined) refuse(type, message, now(), leaseSeconds);
          else refuse(type, message, earliest, seconds);
        };
        const own = ownLease(request);
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
          view.sends,
          budget.sends,
          budget.periodSeconds,
          reserved(budget.periodSeconds, own, view, request),
        );
        cap(
          countryBudget,
          'too many SMS to this country right now',
          view.sends,
          budget.burst,
          budget.burstSeconds,
          reserved(budget.burstSeconds, own, view, request),
        );
        // The range first: it is the mark of pumping, whoever sends.
        if (of.block.mode === 'enforce') {
          const { full: blockIsFull, earliest } = blockFull(request, view);
          if (blockIsFull) {
            refuse(
              guardRefusal.block,
              'too many different numbers of this range right now',
              earliest,
              of.block.periodSeconds,
            );
          }
        }
        const ipTimes = request.ipKey ? view.ips[request.ipKey] : undefined;
        cap(
          guardRefusal.ip,
          'too many sends from this IP address',
          ipTimes,
          of.ip.sends,
          of.ip.periodSeconds,
          request.ipKey ? heldFor('ips', request.ipKey, of.ip.periodSeconds, view, request) : 0,
        );
        const deviceTimes = request.deviceKey ? view.devices[request.deviceKey] : undefined;
        cap(
          guardRefusal.device,
          'too many sends from this device',
          deviceTimes,
          of.device.sends,
          of.device.periodSeconds,
          request.deviceKey
            ? heldFor('devices', request.deviceKey, of.device.periodSeconds, view, request)
            : 0,
        );
      },
    },
  );
  /** Keeps a number's refusal, which the shard repeats to its next sends while it holds. */
  const refuseNumber = (
    numberKey: string,
    { type, message, retryAfterSeconds }: NonNullable<GuardRelease['refusal']>,
  ) => {
    (givenBack[numberKey] ??= []).push(now());
    refusals[numberKey] = {
      type,
      message,
      ...(retryAfterSeconds ? { until: now() + retryAfterSeconds * 1000 } : {}),
    };
  };
  setHandler(guardCodesSentSignal, ({ codes, ...sent }: GuardCodesSent) => {
    // Told twice (a retried call), counted once. Counted with the limits the shard judges by; a shard
    // that has judged nothing yet has not granted the send either.
    const told = `codes:${sent.requestId}`;
    if (!limits || codes <= 1 || recent.includes(told)) return;
    remember(recent, told, recentKept);
    for (let more = 1; more < codes; more++) count(sent.at, sent, limits, { budget: true });
    changed = true;
  });
  setHandler(releaseGuardSignal, (release: GuardRelease) => {
    // Only a grant this shard gave and has not taken back: a release delivered twice is applied
    // once, and the request, asked again, is counted again (it may send then).
    const index = recent.indexOf(release.requestId);
    if (index < 0) {
      // A send its holder admitted under a lease and never reported: only its refusal is news.
      if (release.unreported && release.refusal) refuseNumber(release.numberKey, release.refusal);
      return;
    }
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
    refuseNumber(release.numberKey, release.refusal);
  });
  setHandler(takeLeaseUpdate, (request: LeaseRequest): AdmissionLease => {
    limits = request.limits;
    applyReports(request.reports, request.limits);
    prune(request.limits);
    return grantLease(request.leaseId, request.units, request.limits);
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
        ...carried(),
        limits,
        override,
        runEvents: shardRunEvents,
      });
    }
    if (limits) prune(limits);
    changed = false;
    const wasFull = full;
    const longest = limits ? longestPeriodSeconds(limits) * 1000 : 0;
    // Each list is ascending: its last time is its latest (and no spread of them all into
    // Math.max, which throws past ~100,000 arguments).
    const last = Math.max(
      leases.reduce((latest, lease) => Math.max(latest, lease.until), -Infinity),
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
