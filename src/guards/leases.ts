/**
 * Admission leases: how a process lets most phone sends through the send guards without a round
 * trip to their shard, and keeps every cap exact.
 *
 * A process asks a shard for a lease (`takeAdmissionLease`): a few of the shard's budget units for
 * ten seconds, and the keys (IPs, devices, number blocks, numbers) it may not admit on its own. The
 * shard reserves the units, and one send of every other key, for the lease. While the lease lasts,
 * a send whose keys are none of those exceptions, and none of which this lease admitted before, is
 * admitted here: one unit, one send of each key, exactly what the shard reserved. Every other send
 * asks the shard as before, and the shard counts what each lease holds in reserve. The next lease
 * request reports what the lease admitted (the shard then counts those sends at their times, and the
 * reserve ends); a lease not reported stays reserved at the shard for its periods, the side of fewer
 * sends.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import {
  leasedKeysOf,
  leasedKinds,
  type Admission,
  type AdmissionLease,
  type GuardRequest,
  type LeasedKind,
  type LeaseExceptions,
  type LeaseRequest,
} from '../../workflows/send-guard-messages';

/** How much sooner than the shard's end of a lease the process stops using it, by its own clock. */
const leaseMarginMs = 2_000;

/**
 * How long after a send last asked a shard the process keeps a lease there, renewing it at its end
 * even unused: a send that comes within that time finds a lease, and waits for no shard. Sends a
 * few seconds apart per shard (a service sending every second or so, its sends spread over a
 * country's shards) would otherwise meet each lease handed back, and wait each for a round trip to
 * the shard. Its cost: one request to the shard per lease time in the background, for as long.
 */
const keepWarmMs = 30_000;

/** The units of a process's first lease on a shard, and the most of any. */
const firstUnits = 4;
const mostUnits = 64;

type KeyKind = keyof LeaseExceptions;

/** A lease this process holds on one shard. */
interface HeldLease {
  leaseId: string;
  granted: number;
  unitsLeft: number;
  /** The end of its use by this process's clock. */
  usableUntil: number;
  /** The shard's clock less this process's (ms), as read when the lease came: see {@link clockOffset}. */
  clockOffset: number;
  except: Record<KeyKind, Set<string> | 'all'>;
  /** The keys it admitted a send of (one each). */
  used: Record<KeyKind, Set<string>>;
  /** What it admitted, by request ID, until reported. */
  admissions: Map<string, Admission>;
  flush?: NodeJS.Timeout;
}

/** A lease ended, whose admissions are to be reported. */
interface EndedLease {
  leaseId: string;
  admissions: Map<string, Admission>;
}

/**
 * A lease's share of a send the shard judges (see {@link AdmissionLeases.lend}), with what the
 * lease admitted so far, reported with it.
 */
export interface Lent {
  leaseId: string;
  takes: LeasedKind[];
  interim: Admission[];
}

/** A lease request in flight (see {@link AdmissionLeases.begin}). */
export interface LeaseAsk {
  leaseId: string;
  reports: LeaseRequest['reports'];
  units: number;
  askedAt: number;
  /** The ended leases it reports. */
  reported: EndedLease[];
  done: () => void;
}

/** Sends one lease request to the shard (an update), and answers the shard's lease. */
export type TakeLease = (
  request: Omit<LeaseRequest, 'limits'>,
  /** The call's deadline; default: the helpers' `callTimeoutMs`. */
  timeoutMs?: number,
) => Promise<AdmissionLease>;

/** A send admitted here, with what {@link AdmissionLeases.giveBack} needs to give it back. */
export interface LocalAdmission {
  shardId: string;
  leaseId: string;
  admission: Admission;
}

/** A send's keys, each with its kind. */
const keysOf = (admission: Admission): [KeyKind, string | undefined][] => {
  const keys = leasedKeysOf(admission);
  return [
    ['numbers', admission.numberKey],
    ...leasedKinds.map((kind): [KeyKind, string | undefined] => [kind, keys[kind]]),
  ];
};

/** Whether the lease may still admit a send of `key` on its own: not listed, not admitted before. */
const isFree = (lease: HeldLease, kind: KeyKind, key: string) => {
  const except = lease.except[kind];
  return except !== 'all' && !except.has(key) && !lease.used[kind].has(key);
};

const setOf = (list: string[] | 'all') => (list === 'all' ? 'all' : new Set(list));

/**
 * The shard's clock less this process's, from a lease's `grantedAt`: the shard granted it between
 * the request leaving (`askedAt`) and its answer coming (`answeredAt`), so at their midpoint by this
 * process's clock, within half a round trip. Zero for a shard that does not say (earlier code).
 */
export function clockOffset(grantedAt: number | undefined, askedAt: number, answeredAt: number): number {
  return grantedAt === undefined ? 0 : Math.round(grantedAt - (askedAt + answeredAt) / 2);
}

/**
 * One process's leases (one book per Temporal client: each client is its own holder).
 *
 * The admissions it reports are stamped on the shard's clock: the shard counts them at those times,
 * over periods it reckons by its own clock, so a process whose clock is behind would otherwise have
 * its sends counted in the past and dropped at once (an IP's cap passed by every lease it admits a
 * send of), and one whose clock is ahead would have them count for longer than their period.
 */
export class AdmissionLeases {
  /** This process's clock (ms). */
  readonly #clock: () => number;
  readonly #held = new Map<string, HeldLease>();
  /** Per shard: the ended leases not reported yet (a failed request keeps them for the next). */
  readonly #ended = new Map<string, EndedLease[]>();
  readonly #asking = new Map<string, Promise<void>>();
  /** Per shard: how to ask it (the last caller's way). */
  readonly #takers = new Map<string, TakeLease>();
  /** Per shard: when a send last asked it (by this process's clock). */
  readonly #askedAt = new Map<string, number>();
  readonly #keepWarmMs: number;

  constructor({ clock = () => Date.now(), keepWarmMs: keepWarm = keepWarmMs }: LeaseBookOptions = {}) {
    this.#clock = clock;
    this.#keepWarmMs = keepWarm;
  }

  /**
   * Admits a send under the shard's lease when the lease can: `repeat` for a request it admitted
   * already (a retried call), undefined when the shard is to be asked.
   */
  admit(shardId: string, request: GuardRequest): LocalAdmission | 'repeat' | undefined {
    this.#askedAt.set(shardId, this.#clock());
    if (this.#admitted(shardId, request.requestId)) return 'repeat';
    const lease = this.#usable(shardId);
    if (!lease) return undefined;
    const admission: Admission = {
      requestId: request.requestId,
      at: this.#clock() + lease.clockOffset,
      block: request.block,
      numberKey: request.numberKey,
      ...(request.ipKey ? { ipKey: request.ipKey } : {}),
      ...(request.deviceKey ? { deviceKey: request.deviceKey } : {}),
    };
    const keys = keysOf(admission);
    if (keys.some(([kind, key]) => key !== undefined && !isFree(lease, kind, key))) return undefined;
    for (const [kind, key] of keys) if (key !== undefined) lease.used[kind].add(key);
    lease.unitsLeft -= 1;
    lease.admissions.set(admission.requestId, admission);
    return { shardId, leaseId: lease.leaseId, admission };
  }

  /**
   * {@link admit}, after the lease request in flight to the shard if one is and the lease held cannot
   * admit the send: the lease it brings may. Waited for once: a send the shard refuses brings none,
   * and the sends behind it go on to the shard.
   */
  async admitOrWait(shardId: string, request: GuardRequest): Promise<LocalAdmission | 'repeat' | undefined> {
    const local = this.admit(shardId, request);
    const asking = this.#asking.get(shardId);
    if (local !== undefined || !asking) return local;
    await asking;
    return this.admit(shardId, request);
  }

  /** Whether the next request to the shard should ask for a lease: none is usable, none asked for. */
  wantsLease(shardId: string): boolean {
    return !this.#asking.has(shardId) && !this.#usable(shardId);
  }

  /**
   * The lease's share of a send the shard judges itself (a key the lease cannot admit): one unit of
   * the budget, and the reserve of each key the lease has neither admitted nor been told to leave
   * (`takes`: the shard then does not count that reserve beside the send, and the lease admits no
   * send of that key any more). Undefined when the lease has no unit left.
   */
  lend(shardId: string, request: GuardRequest): Lent | undefined {
    const lease = this.#usable(shardId);
    if (!lease) return undefined;
    lease.unitsLeft -= 1;
    const takes: LeasedKind[] = [];
    const keys = leasedKeysOf(request);
    for (const kind of leasedKinds) {
      const key = keys[kind];
      if (key === undefined || !isFree(lease, kind, key)) continue;
      lease.used[kind].add(key);
      takes.push(kind);
    }
    return { leaseId: lease.leaseId, takes, interim: [...lease.admissions.values()] };
  }

  /** The interim report of a send the shard granted is applied: those admissions are reported. */
  reported(shardId: string, { leaseId, interim }: Lent): void {
    const admissions = this.#lease(shardId, leaseId)?.admissions;
    for (const { requestId } of interim) admissions?.delete(requestId);
  }

  /**
   * Gives back what {@link lend} took for a send the shard refused (a refused update changes
   * nothing there): its unit, and the keys whose reserve it was to take.
   */
  unlend(shardId: string, { leaseId, takes }: Lent, request: GuardRequest): void {
    const lease = this.#held.get(shardId);
    if (lease?.leaseId !== leaseId) return;
    lease.unitsLeft += 1;
    const keys = leasedKeysOf(request);
    for (const kind of takes) {
      const key = keys[kind];
      if (key !== undefined) lease.used[kind].delete(key);
    }
  }

  /**
   * Starts a lease request: ends the shard's lease here (nothing more is admitted under it
   * unreported) and reports it with any ended before whose report failed. Settle it with
   * {@link settle}; sends that come meanwhile wait for it.
   */
  begin(shardId: string, { handBack = false } = {}): LeaseAsk {
    if (this.#asking.has(shardId)) throw new Error(`a lease request to ${shardId} is in flight`);
    const old = this.#held.get(shardId);
    const ended = this.#ended.get(shardId) ?? [];
    if (old) {
      clearTimeout(old.flush);
      this.#held.delete(shardId);
      ended.push({ leaseId: old.leaseId, admissions: old.admissions });
      this.#ended.set(shardId, ended);
    }
    // Twice what the last lease used: a busy process asks less often, an idle one reserves little.
    // One that went unused (renewed only to stay warm for the sends to come) reserves one unit: the
    // country's budget it holds back from other processes stays small while nothing is sent.
    const used = old ? old.granted - old.unitsLeft : undefined;
    const units = handBack
      ? 0
      : used === undefined
        ? firstUnits
        : used === 0
          ? 1
          : Math.min(mostUnits, Math.max(firstUnits, 2 * used));
    let done!: () => void;
    this.#asking.set(shardId, new Promise<void>((resolve) => (done = resolve)));
    return {
      leaseId: randomUUID(),
      reports: ended.map(({ leaseId, admissions }) => ({ leaseId, admissions: [...admissions.values()] })),
      units,
      askedAt: this.#clock(),
      reported: [...ended],
      done,
    };
  }

  /**
   * Settles a lease request with the shard's answer: `undefined` when the request failed or was
   * refused (the shard applied nothing of it: the reports go again with the next request).
   */
  settle(shardId: string, ask: LeaseAsk, lease: AdmissionLease | undefined, take: TakeLease): void {
    this.#takers.set(shardId, take);
    try {
      if (!lease) return;
      const left = (this.#ended.get(shardId) ?? []).filter((entry) => !ask.reported.includes(entry));
      if (left.length > 0) this.#ended.set(shardId, left);
      else this.#ended.delete(shardId);
      if (lease.units > 0) this.#hold(shardId, lease, ask.askedAt);
    } finally {
      this.#asking.delete(shardId);
      ask.done();
    }
  }

  /**
   * Reports the shard's lease on its own request (no send with it) and asks for a new one, or with
   * `handBack` for none. A failed request leaves no lease: sends then ask the shard.
   */
  async renew(
    shardId: string,
    take: TakeLease,
    { handBack = false, timeoutMs }: { handBack?: boolean; timeoutMs?: number } = {},
  ): Promise<void> {
    const asking = this.#asking.get(shardId);
    if (asking) return asking;
    const ask = this.begin(shardId, { handBack });
    let lease: AdmissionLease | undefined;
    try {
      lease = await take({ leaseId: ask.leaseId, reports: ask.reports, units: ask.units }, timeoutMs);
    } catch {
      // The ended leases are reported with the next request; until then the shard keeps them reserved.
    }
    this.settle(shardId, ask, lease, take);
  }

  /**
   * Ends the leases held on `shardIds` (all: every shard), and reports them and any ended before,
   * asking for no new one: before an operator reads or changes what the shards count, and when the
   * process closes.
   */
  async handBack(shardIds?: readonly string[], { timeoutMs }: { timeoutMs?: number } = {}): Promise<void> {
    const chosen = (shardId: string) => !shardIds || shardIds.includes(shardId);
    // A request in flight may bring a lease: wait for it first. No longer than `timeoutMs`: a
    // renewal started in the background runs under the helpers' call deadline (40 s by default),
    // and a shard no worker serves (the workers stopped first) lets it run all of that, past a
    // deploy's grace for a closing process.
    await settledWithin(
      [...this.#asking].filter(([id]) => chosen(id)).map(([, asking]) => asking),
      timeoutMs,
    );
    const shards = new Set([...this.#held.keys(), ...this.#ended.keys()].filter(chosen));
    await settledWithin(
      [...shards].map((shardId) => {
        const take = this.#takers.get(shardId);
        // A request still in flight is answered by that request (see `renew`): bounded here too.
        return take ? this.renew(shardId, take, { handBack: true, timeoutMs }) : undefined;
      }),
      timeoutMs,
    );
  }

  /**
   * Gives a send admitted here back: refused by its window (`refused`), it is no longer counted at
   * all; failed with nothing sent, its unit of the budget comes back and its keys stay counted.
   * Answers `withdrawn` when it had not been reported (nothing of it reaches the shard), `reported`
   * when the shard counts it (it is then released there as any grant).
   */
  async giveBack(
    { shardId, leaseId, admission }: LocalAdmission,
    refused: boolean,
  ): Promise<'withdrawn' | 'reported'> {
    await this.#asking.get(shardId);
    const held = this.#held.get(shardId);
    // Refused by its window: the shard answers the number's next sends itself (its cooldown), so the
    // lease held leaves them to it.
    if (refused && held && held.except.numbers !== 'all') held.except.numbers.add(admission.numberKey);
    const lease = this.#lease(shardId, leaseId);
    if (!lease?.admissions.has(admission.requestId)) return 'reported';
    if (!refused) {
      lease.admissions.set(admission.requestId, { ...admission, budgetReturned: true });
      if (lease === held) held.unitsLeft += 1;
      return 'withdrawn';
    }
    lease.admissions.delete(admission.requestId);
    if (lease === held) {
      held.unitsLeft += 1;
      for (const [kind, key] of keysOf(admission)) if (key !== undefined) held.used[kind].delete(key);
    }
    return 'withdrawn';
  }

  #usable(shardId: string): HeldLease | undefined {
    const lease = this.#held.get(shardId);
    if (!lease || this.#asking.has(shardId)) return undefined;
    return lease.unitsLeft > 0 && this.#clock() < lease.usableUntil ? lease : undefined;
  }

  /** The shard's lease `leaseId`: the one held, or one ended and not reported yet. */
  #lease(shardId: string, leaseId: string): HeldLease | EndedLease | undefined {
    const held = this.#held.get(shardId);
    if (held?.leaseId === leaseId) return held;
    return this.#ended.get(shardId)?.find((ended) => ended.leaseId === leaseId);
  }

  #admitted(shardId: string, requestId: string): boolean {
    if (this.#held.get(shardId)?.admissions.has(requestId)) return true;
    return this.#ended.get(shardId)?.some((ended) => ended.admissions.has(requestId)) ?? false;
  }

  #hold(shardId: string, lease: AdmissionLease, askedAt: number): void {
    const answeredAt = this.#clock();
    const held: HeldLease = {
      leaseId: lease.leaseId,
      granted: lease.units,
      unitsLeft: lease.units,
      // From before the request left: the shard's lease began after that.
      usableUntil: askedAt + lease.seconds * 1000 - leaseMarginMs,
      clockOffset: clockOffset(lease.grantedAt, askedAt, answeredAt),
      except: {
        numbers: setOf(lease.except.numbers),
        ips: setOf(lease.except.ips),
        devices: setOf(lease.except.devices),
        blocks: setOf(lease.except.blocks),
      },
      used: { numbers: new Set(), ips: new Set(), devices: new Set(), blocks: new Set() },
      admissions: new Map(),
    };
    // At its end the lease is reported: renewed if it was used or a send asked the shard lately,
    // handed back once the shard's sends have stopped.
    held.flush = setTimeout(() => {
      if (this.#held.get(shardId) !== held || this.#asking.has(shardId)) return;
      const take = this.#takers.get(shardId);
      const used = held.unitsLeft !== held.granted;
      const lately = this.#clock() - (this.#askedAt.get(shardId) ?? -Infinity) < this.#keepWarmMs;
      if (take) void this.renew(shardId, take, { handBack: !used && !lately });
    }, held.usableUntil - answeredAt);
    held.flush.unref();
    this.#held.set(shardId, held);
  }
}

/** How a book of leases runs; the defaults are the product's, a test may change them. */
export interface LeaseBookOptions {
  /** This process's clock (ms); a test gives a skewed one. */
  clock?: () => number;
  /** How long after a shard's last send its lease is kept, renewed unused (ms; 0: handed back unused). */
  keepWarmMs?: number;
}

const books = new WeakMap<Client, AdmissionLeases>();

/**
 * The leases held through one Temporal client. `options` are read by the first call for a client,
 * which creates the book.
 */
export function admissionLeasesOf(client: Client, options?: LeaseBookOptions): AdmissionLeases {
  let book = books.get(client);
  if (!book) books.set(client, (book = new AdmissionLeases(options)));
  return book;
}

/** How long a closing process tries to hand its leases back: a server already gone must not hold it. */
const handBackOnCloseMs = 2_000;

/**
 * Reports and hands back every lease held through `client`, before its connection closes. Given up
 * after four seconds at most, two for a renewal in flight and two for the hand-back (a Temporal
 * server stopping at the same time, or workers stopped first): the shards then keep the leases'
 * reserve until they lapse, the side of fewer sends.
 */
export async function returnAdmissionLeases(client: Client): Promise<void> {
  await books.get(client)?.handBack(undefined, { timeoutMs: handBackOnCloseMs });
}

/** Waits for `promises` to settle, for at most `timeoutMs` when it is given. */
async function settledWithin(
  promises: readonly (Promise<unknown> | undefined)[],
  timeoutMs: number | undefined,
): Promise<void> {
  const settled = Promise.allSettled(promises);
  if (timeoutMs === undefined) {
    await settled;
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}
