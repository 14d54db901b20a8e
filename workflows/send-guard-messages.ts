/**
 * The send guards' contract: one long-lived entity per (task queue, country, shard) that counts the
 * country's SMS sends over a sliding period, and inside its share of the country the sends per IP,
 * per device and the distinct numbers per number block. A country is not personal data; IPs, devices
 * and numbers arrive as HMAC keys. Requests over a limit are refused by the update's validator, so a
 * refused send writes nothing to history.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** Every guard entity's workflow ID starts with this, followed by `<task queue>-<country>-<shard>`. */
export const sendGuardIdPrefix = 'send-guard-';

/** The failure types a refused guard request carries (with `retryAfterSeconds` in its details). */
export const guardRefusal = {
  countryBudget: 'country_budget_exhausted',
  ip: 'ip_rate_limited',
  device: 'device_rate_limited',
  block: 'number_block_velocity',
} as const;

/**
 * Given-back sends a number may have within the burst period before the guard refuses it itself,
 * as its window last did: a grant and its release are two writes to the shard, so a client
 * hammering one number with sends its window refuses is stopped here, writing nothing, instead of
 * writing twice a request for as long as it goes on. (A resend inside the cooldown is refused here
 * from the second on: see {@link GuardRelease.refusal}.)
 */
export const givenBackPerNumber = 5;

/** What a guard noticed but let through (`GUARD_BLOCK_MODE=monitor`). */
export type GuardFlag = 'number_block_velocity';

/** How many events a key gets per period. */
export interface Allowance {
  sends: number;
  periodSeconds: number;
}

/**
 * The most state a shard counts: continue-as-new carries it as one payload, which Temporal refuses
 * over 2 MB, and a shard that cannot continue is stuck (every send to it would go unanswered). A
 * shard this full refuses further sends instead, until counts leave their period.
 */
export const carriedBytesLimit = 1_500_000;

/** What one counted send adds to the state, at most: its time, an IP's, a device's, a block's entry. */
export const bytesPerSend = 250;

/** The sends a shard can count in its period, each with its own IP, device and block, before it is full. */
export const countedSendsPerShard = Math.floor(carriedBytesLimit / bytesPerSend);

/** The limits one shard applies: its share of the country's budget, and the per-key caps. */
export interface ShardLimits {
  /** This shard's share of the country's sends per period, and of its burst. */
  budget: Allowance & { burst: number; burstSeconds: number };
  ip: Allowance;
  device: Allowance;
  /** Distinct numbers of one block per period; `monitor` flags instead of refusing. */
  block: { numbers: number; periodSeconds: number; mode: 'monitor' | 'enforce' | 'off' };
}

/** One send asking to pass. */
export interface GuardRequest {
  /** The same request asked twice (a retried call) is counted once. */
  requestId: string;
  /** The number's block: its leading digits (a range of numbers, not a person). */
  block: string;
  /** HMAC keys: the number, and the caller's IP and device when the caller passed them. */
  numberKey: string;
  ipKey?: string;
  deviceKey?: string;
  /** The limits in force (configuration may change between requests; the newest applies). */
  limits: ShardLimits;
  /**
   * The asking process's admission lease on this shard, when it holds one with units left: the
   * send is then one of them (the lease reserved its share of the budget), not a new one.
   */
  leaseId?: string;
  /**
   * The keys of kinds whose reserve in that lease this send takes: the lease had not admitted them,
   * and will not now. The shard counts the send in their place, not beside them.
   */
  leaseTakes?: LeasedKind[];
  /**
   * What that lease admitted and has not reported yet, reported with the send (the lease goes on):
   * counted, each once, and their keys' reserve taken, before the send is judged. So the shard
   * judges it on every send there is, with one process exactly.
   */
  interim?: Admission[];
  /**
   * The asking process's lease request, answered with the grant: the send is judged as if the
   * leases it reports were reported already, and a refused send writes nothing, the reports
   * neither (they come again with the next request).
   */
  lease?: Omit<LeaseRequest, 'limits'>;
}

/** A granted request's answer. */
export interface GuardGrant {
  flags: GuardFlag[];
  /** When the send was counted; absent when the same request was counted before (a retried call). */
  at?: number;
  /** The lease granted, when the request asked for one. */
  lease?: AdmissionLease;
}

/** A send the shard counts, or counted: its request, when, and its keys. */
export interface CountedSend {
  requestId: string;
  /** When it was counted (ms): a grant's `at`. */
  at: number;
  block: string;
  numberKey: string;
  ipKey?: string;
  deviceKey?: string;
}

/**
 * A grant given back: no code went out for the send it let through. Either its window or its
 * target's limits refused it (`refusal`): its counts are removed, so that a user tapping resend too
 * early spends neither the country's budget nor their IP's or device's share of it. Or Prelude
 * answered every attempt of it with an error (no `refusal`: an outage, say): only its share of the
 * country's budget comes back, so that an outage does not spend the budget every user of the
 * country shares; the IP, device and number-block counts stay, since they bound how hard one caller
 * can drive sends (and calls to Prelude) while it lasts.
 */
export interface GuardRelease extends CountedSend {
  /**
   * How the send was refused: the failure type the window answered with, the error table's words
   * for it (never Prelude's message, which may quote the number), and for a resend inside the
   * cooldown the seconds left of it. The shard gives that same answer, writing
   * nothing, to the number's further sends until the cooldown ends, and past
   * {@link givenBackPerNumber} give-backs.
   */
  refusal?: { type: string; message: string; retryAfterSeconds?: number };
  /**
   * The send was admitted under a lease and never reported: nothing of it is counted, only its
   * `refusal` is kept for the number.
   */
  unreported?: true;
}

/**
 * The grant a send carries to its window: its shard, and what the shard counted (or the process's
 * lease admitted) for it. The window tells the shard through it when the send sent more than one
 * code (see {@link GuardCodesSent}).
 */
export interface GuardGrantRef extends CountedSend {
  shardId: string;
}

/**
 * A granted send that sent `codes` in all: attempts whose answers were lost, each of which Prelude
 * applied (each an SMS), as its window counted them. The grant counted one; the shard counts the
 * others at the grant's time under the same keys, the country's budget included, once per request.
 */
export interface GuardCodesSent extends CountedSend {
  codes: number;
}

/** A budget the operator set at run time for this shard, until `until` (ISO) or until replaced. */
export interface BudgetOverride {
  sends: number;
  burst: number;
  until?: string;
}

/** What a shard counts now (its `usage` query, and the admin route's answer, summed). */
export interface ShardUsage {
  sendsUsed: number;
  sendsLeft: number;
  burstUsed: number;
  blocks: number;
  ips: number;
  devices: number;
  /** Sends reserved by admission leases not yet reported (counted in `sendsLeft`, not in `sendsUsed`). */
  leased?: number;
  override?: BudgetOverride;
}

/** The refusal a number's last given-back send met, as the shard repeats it. */
export interface NumberRefusal {
  type: string;
  message: string;
  /** While the window's cooldown lasts (ms). */
  until?: number;
}

/**
 * How long a process may admit sends under an admission lease, in the shard's time. The process
 * stops two seconds sooner by its own clock, counted from before it asked (see src/guards/leases.ts).
 */
export const leaseSeconds = 10;

/** The most keys of one kind a lease lists as its exceptions; past it, every key of the kind is one. */
export const leaseExceptionsKept = 1_000;

/**
 * The keys a lease's holder may not admit on its own: the shard judges every send with one of them.
 * A kind `all` of whose keys are exceptions.
 */
export interface LeaseExceptions {
  /** Numbers with a refusal or a give-back the shard repeats (see {@link GuardRelease.refusal}). */
  numbers: string[] | 'all';
  ips: string[] | 'all';
  devices: string[] | 'all';
  blocks: string[] | 'all';
}

/** The kinds of key a lease holds one send in reserve of, each. */
export const leasedKinds = ['ips', 'devices', 'blocks'] as const;
export type LeasedKind = (typeof leasedKinds)[number];

/** A send's key of each kind a lease holds a reserve of. */
export const leasedKeysOf = ({
  ipKey,
  deviceKey,
  block,
}: Pick<GuardRequest, 'ipKey' | 'deviceKey' | 'block'>): Record<LeasedKind, string | undefined> => ({
  ips: ipKey,
  devices: deviceKey,
  blocks: block,
});

/**
 * An admission lease as the shard counts it until its holder reports it. Its `units` are reserved
 * from the budget (counted as sends while they might be used, and a period after); and for every
 * IP, device and block it does not list as an exception it holds one send in reserve, as one it may
 * have admitted: the caps stay exact with any number of holders. A lease its holder never reports
 * (a crashed process) keeps all of that until its end plus each period, the side of fewer sends.
 */
export interface LeaseRecord {
  leaseId: string;
  units: number;
  /** The end of its use (ms, the shard's time). */
  until: number;
  except: LeaseExceptions;
  /** Keys whose reserve a send the shard granted took (see GuardRequest.leaseTakes): none left. */
  taken?: Partial<Record<LeasedKind, string[]>>;
}

/**
 * A send a process admitted under its lease, as it reports it: `at` is on the shard's clock, as the
 * holder reads it from the lease's `grantedAt` (its own clock for a lease without one).
 */
export interface Admission extends CountedSend {
  /**
   * Prelude answered every attempt of it with an error: its share of the country's budget came
   * back, its IP, device and block counts stay (as {@link GuardRelease} without a refusal).
   */
  budgetReturned?: true;
}

/**
 * A process asking for an admission lease: it reports the leases it held (which ends them: the
 * last, and any whose report failed before), and asks for `units` sends of a new one (none: it only
 * hands the old ones back).
 */
export interface LeaseRequest {
  leaseId: string;
  reports: { leaseId: string; admissions: Admission[] }[];
  units: number;
  limits: ShardLimits;
}

/** The lease granted: `units` 0 when the shard has none to spare (the process then asks per send). */
export interface AdmissionLease {
  leaseId: string;
  units: number;
  seconds: number;
  except: LeaseExceptions;
  /**
   * The shard's time when it granted the lease (ms): the holder stamps its admissions on the shard's
   * clock from it, whatever its own clock says. Absent from shards of earlier code.
   */
  grantedAt?: number;
}

/** Times (ms) of events, by key. */
export type Timeline = Record<string, number[]>;

/** The entity's input, and what it carries over when it continues as new. */
export interface SendGuardInput {
  country: string;
  shard: number;
  sends?: number[];
  ips?: Timeline;
  devices?: Timeline;
  /** Per block, the number keys seen and when. */
  blocks?: Record<string, { key: string; at: number }[]>;
  recent?: string[];
  /** Per number key, when its sends were given back (kept for the burst period). */
  givenBack?: Timeline;
  /** Per number key, the last refusal given back, and until when it holds (a cooldown's end). */
  refusals?: Record<string, NumberRefusal>;
  limits?: ShardLimits;
  override?: BudgetOverride;
  /** Admission leases not yet reported. */
  leases?: LeaseRecord[];
  /**
   * The run continues as new once its history holds this many events (see {@link shardRunEvents}).
   * Absent from runs started before runs were kept short: they continue when Temporal suggests, as
   * they did, so that a worker replays them as they ran.
   */
  runEvents?: number;
}

/**
 * The events a shard's run holds before it continues as new (about 100 grants), as long as it has
 * written at least twice the state it was handed. A worker that does not have the shard in its cache
 * (after a restart, a deploy, an eviction) replays the run before it answers any send to the shard,
 * at about 0.6 ms per history event on 2 cores: a run as long as Temporal suggests (4,096+ events)
 * held every send to its shard for 1-3 s. The second condition bounds what handing over
 * adds: a shard that carries much state is handed over less often (Temporal's suggestion still ends
 * its run).
 */
export const shardRunEvents = 500;

/** Asks leave for one send; refused over a limit. */
export const guardSendUpdate = defineUpdate<GuardGrant, [GuardRequest]>('guardSend');
/** Reports a process's admission lease, and grants it a new one; never refused. */
export const takeLeaseUpdate = defineUpdate<AdmissionLease, [LeaseRequest]>('takeAdmissionLease');
/** Gives a grant back (see {@link GuardRelease}); a release delivered twice is applied once. */
export const releaseGuardSignal = defineSignal<[GuardRelease]>('releaseGuard');
/** See {@link GuardCodesSent}. */
export const guardCodesSentSignal = defineSignal<[GuardCodesSent]>('guardCodesSent');
/** Sets (or, with `null`, removes) the operator's budget of this shard. */
export const setBudgetUpdate = defineUpdate<ShardUsage, [BudgetOverride | null]>('setBudget');
/** Forgets every send counted so far (the operator's reset). */
export const resetGuardUpdate = defineUpdate<ShardUsage, []>('resetGuard');
/** What the shard counts now. */
export const guardUsageQuery = defineQuery<ShardUsage>('guardUsage');
