/**
 * A process's admission leases, without a shard: what it admits on its own, what it leaves to the
 * shard, and what it reports. The shard's side is tested against a real dev server in
 * test/workflow/admission-leases.test.ts.
 */
import {
  AdmissionLeases,
  type LeaseAsk,
  type LeaseBookOptions,
  type TakeLease,
} from '../../src/guards/leases';
import type {
  AdmissionLease,
  GuardRequest,
  LeaseExceptions,
  ShardLimits,
} from '../../workflows/send-guard-messages';

const shard = 'send-guard-q-GB-0';
const limits: ShardLimits = {
  budget: { sends: 100, periodSeconds: 3600, burst: 100, burstSeconds: 60 },
  ip: { sends: 3, periodSeconds: 3600 },
  device: { sends: 3, periodSeconds: 3600 },
  block: { numbers: 3, periodSeconds: 600, mode: 'enforce' },
};
let nextRequest = 0;
const send = (keys: Partial<GuardRequest> = {}): GuardRequest => ({
  requestId: `r${nextRequest++}`,
  block: `b${nextRequest}`,
  numberKey: `n${nextRequest}`,
  limits,
  ...keys,
});
const noExceptions: LeaseExceptions = { numbers: [], ips: [], devices: [], blocks: [] };
const take: TakeLease = () => Promise.reject(new Error('no shard here'));

/** Settles a lease request with the shard's lease of `units`. */
function grant(book: AdmissionLeases, units: number, except: Partial<LeaseExceptions> = {}): LeaseAsk {
  const ask = book.begin(shard);
  const lease: AdmissionLease = {
    leaseId: ask.leaseId,
    units,
    seconds: 10,
    except: { ...noExceptions, ...except },
  };
  book.settle(shard, ask, lease, take);
  return ask;
}

describe('admission leases in a process', () => {
  it('admits nothing without a lease, and asks for one', () => {
    const book = new AdmissionLeases();
    expect(book.admit(shard, send())).toBeUndefined();
    expect(book.wantsLease(shard)).toBe(true);
  });

  it('admits up to the units granted, then leaves sends to the shard', () => {
    const book = new AdmissionLeases();
    grant(book, 2);
    expect(book.admit(shard, send())).toMatchObject({ shardId: shard });
    expect(book.admit(shard, send())).toMatchObject({ shardId: shard });
    expect(book.admit(shard, send())).toBeUndefined();
    expect(book.wantsLease(shard)).toBe(true);
  });

  it('admits one send of each IP, device, block and number per lease: the shard reserves one each', () => {
    const book = new AdmissionLeases();
    grant(book, 10);
    expect(book.admit(shard, send({ ipKey: 'ip1' }))).toBeDefined();
    expect(book.admit(shard, send({ ipKey: 'ip1' }))).toBeUndefined();
    expect(book.admit(shard, send({ deviceKey: 'd1' }))).toBeDefined();
    expect(book.admit(shard, send({ deviceKey: 'd1' }))).toBeUndefined();
    expect(book.admit(shard, send({ block: 'B' }))).toBeDefined();
    expect(book.admit(shard, send({ block: 'B' }))).toBeUndefined();
    expect(book.admit(shard, send({ numberKey: 'N' }))).toBeDefined();
    expect(book.admit(shard, send({ numberKey: 'N' }))).toBeUndefined();
    // A send the lease cannot admit takes nothing of it.
    expect(book.admit(shard, send({ ipKey: 'ip2' }))).toBeDefined();
  });

  it('leaves the keys the shard listed, or a whole kind, to the shard', () => {
    const book = new AdmissionLeases();
    grant(book, 10, { ips: ['near'], devices: 'all', numbers: ['refused'] });
    expect(book.admit(shard, send({ ipKey: 'near' }))).toBeUndefined();
    expect(book.admit(shard, send({ deviceKey: 'any' }))).toBeUndefined();
    expect(book.admit(shard, send({ numberKey: 'refused' }))).toBeUndefined();
    expect(book.admit(shard, send({ ipKey: 'other' }))).toBeDefined();
  });

  it('answers a retried request as admitted once, and reports each admission once', () => {
    const book = new AdmissionLeases();
    grant(book, 10);
    const request = send();
    expect(book.admit(shard, request)).toBeDefined();
    expect(book.admit(shard, request)).toBe('repeat');
    const ask = book.begin(shard);
    expect(ask.reports).toHaveLength(1);
    expect(ask.reports[0]!.admissions.map((admission) => admission.requestId)).toEqual([request.requestId]);
    // Reported: the next request reports nothing more.
    book.settle(shard, ask, { leaseId: ask.leaseId, units: 0, seconds: 0, except: noExceptions }, take);
    expect(book.begin(shard).reports).toEqual([]);
  });

  it('reports again what a refused or failed request carried, and admits nothing meanwhile', () => {
    const book = new AdmissionLeases();
    grant(book, 10);
    expect(book.admit(shard, send())).toBeDefined();
    const first = book.begin(shard);
    expect(book.admit(shard, send())).toBeUndefined();
    book.settle(shard, first, undefined, take);
    const second = book.begin(shard);
    expect(second.reports.map((report) => report.admissions.length)).toEqual([1]);
  });

  it('asks for twice what the last lease used, from 4 up to 64', () => {
    const book = new AdmissionLeases();
    expect(book.begin(shard).units).toBe(4);
    const leases = new AdmissionLeases();
    grant(leases, 64);
    for (let i = 0; i < 40; i++) leases.admit(shard, send());
    expect(leases.begin(shard).units).toBe(64);
  });

  it('withdraws a refused send not reported yet, freeing its unit and keys, and leaves its number to the shard', async () => {
    const book = new AdmissionLeases();
    grant(book, 1);
    const admitted = book.admit(shard, send({ ipKey: 'ip', numberKey: 'N' }));
    if (!admitted || admitted === 'repeat') throw new Error('not admitted');
    expect(await book.giveBack(admitted, true)).toBe('withdrawn');
    expect(book.admit(shard, send({ ipKey: 'ip' }))).toBeDefined();
    expect(book.begin(shard).reports[0]!.admissions.map((admission) => admission.ipKey)).toEqual(['ip']);
  });

  it('keeps the keys of a send Prelude failed, returning only its unit of the budget', async () => {
    const book = new AdmissionLeases();
    grant(book, 1);
    const admitted = book.admit(shard, send({ ipKey: 'ip' }));
    if (!admitted || admitted === 'repeat') throw new Error('not admitted');
    expect(await book.giveBack(admitted, false)).toBe('withdrawn');
    expect(book.admit(shard, send({ ipKey: 'ip' }))).toBeUndefined();
    expect(book.admit(shard, send())).toBeDefined();
    const [report] = book.begin(shard).reports;
    expect(report!.admissions.map((admission) => admission.budgetReturned)).toEqual([true, undefined]);
  });

  it('gives back a reported send as any grant', async () => {
    const book = new AdmissionLeases();
    grant(book, 1);
    const admitted = book.admit(shard, send());
    if (!admitted || admitted === 'repeat') throw new Error('not admitted');
    const ask = book.begin(shard);
    book.settle(shard, ask, { leaseId: ask.leaseId, units: 0, seconds: 0, except: noExceptions }, take);
    expect(await book.giveBack(admitted, true)).toBe('reported');
  });

  it.each([
    ['two hours behind the shard', 2 * 3_600_000],
    ['two hours ahead of it', -2 * 3_600_000],
  ])("stamps what it admits on the shard's clock, its own %s", (_, shardLessProcess) => {
    let processNow = 5_000_000;
    const book = new AdmissionLeases({ clock: () => processNow });
    const ask = book.begin(shard);
    // The answer comes 20 ms after the request left; the shard granted the lease in between.
    processNow += 20;
    const grantedAt = processNow - 10 + shardLessProcess;
    book.settle(
      shard,
      ask,
      { leaseId: ask.leaseId, units: 4, seconds: 10, except: noExceptions, grantedAt },
      take,
    );
    processNow += 1_000;
    const admitted = book.admit(shard, send());
    if (!admitted || admitted === 'repeat') throw new Error('not admitted');
    expect(admitted.admission.at).toBe(grantedAt + 1_010);
    expect(book.begin(shard).reports[0]!.admissions[0]!.at).toBe(grantedAt + 1_010);
  });

  it("stamps what it admits on its own clock under a lease that gives no shard's time (earlier code)", () => {
    const processNow = 7_000_000;
    const book = new AdmissionLeases({ clock: () => processNow });
    grant(book, 4);
    const admitted = book.admit(shard, send());
    if (!admitted || admitted === 'repeat') throw new Error('not admitted');
    expect(admitted.admission.at).toBe(processNow);
  });

  it('stops admitting once its time is up by its own clock', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const book = new AdmissionLeases();
      grant(book, 10);
      jest.setSystemTime(1_000_000 + 7_900);
      expect(book.admit(shard, send())).toBeDefined();
      // Two seconds before the shard's end, counted from before the request left.
      jest.setSystemTime(1_000_000 + 8_000);
      expect(book.admit(shard, send())).toBeUndefined();
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('a lease kept for the sends to come', () => {
  /** A shard that grants every request the units asked, and records what it was asked. */
  function shardGranting() {
    const asked: { units: number; reported: number }[] = [];
    const take: TakeLease = (request) => {
      asked.push({ units: request.units, reported: request.reports.flatMap((r) => r.admissions).length });
      return Promise.resolve({
        leaseId: request.leaseId,
        units: request.units,
        seconds: 10,
        except: noExceptions,
      });
    };
    return { asked, take };
  }
  /** A book holding a lease of the shard's (4 units) that admitted one send. */
  async function leaseUsedOnce(options?: LeaseBookOptions) {
    const { asked, take } = shardGranting();
    const book = new AdmissionLeases(options);
    const ask = book.begin(shard);
    book.settle(shard, ask, await take({ leaseId: ask.leaseId, reports: [], units: 4 }), take);
    expect(book.admit(shard, send())).toBeDefined();
    return { book, asked };
  }
  /** Lets the lease's end pass, and the renewal it starts settle. */
  async function pastLeaseEnd(): Promise<void> {
    await jest.advanceTimersByTimeAsync(8_000);
  }

  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('admits a send that comes after the lease ran out unused, when sends came lately', async () => {
    const { book, asked } = await leaseUsedOnce();
    await pastLeaseEnd(); // used: renewed, reporting the send
    await pastLeaseEnd(); // unused, but a send asked 8 s ago: renewed
    // 17 s after the last send, beyond any one lease: admitted here, no shard asked on its way.
    jest.advanceTimersByTime(1_000);
    expect(book.admit(shard, send())).toBeDefined();
    // Renewed unused, the lease holds back one unit of the budget.
    expect(asked).toEqual([
      { units: 4, reported: 0 },
      { units: 4, reported: 1 },
      { units: 1, reported: 0 },
    ]);
  });

  it('hands the lease back once no send asked the shard for 30 seconds', async () => {
    const { book, asked } = await leaseUsedOnce();
    for (let i = 0; i < 6; i++) await pastLeaseEnd();
    // Renewed at 8, 16 and 24 s (the send 8 s to 24 s before), handed back at 32 s (0 units), and
    // nothing asked since: the next send goes to the shard.
    expect(asked.map(({ units }) => units)).toEqual([4, 4, 1, 1, 0]);
    expect(book.admit(shard, send())).toBeUndefined();
    expect(book.wantsLease(shard)).toBe(true);
  });

  it('hands an unused lease back at once when told to keep none', async () => {
    const { asked } = await leaseUsedOnce({ keepWarmMs: 0 });
    await pastLeaseEnd();
    await pastLeaseEnd();
    expect(asked.map(({ units }) => units)).toEqual([4, 4, 0]);
  });
});

describe('a process closing while a lease request waits on its shard', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('hands its leases back within its time, though the renewal in flight is never answered', async () => {
    // The shard grants the first lease, then its workers stop: nothing it is asked is answered.
    // The hand-back's requests end at its deadline; the renewal in the background would end only at
    // the helpers' call deadline (40 s by default), here never.
    let serving = true;
    const asked: number[] = [];
    const take: TakeLease = (request, timeoutMs) => {
      asked.push(request.units);
      if (serving) {
        return Promise.resolve({
          leaseId: request.leaseId,
          units: request.units,
          seconds: 10,
          except: noExceptions,
        });
      }
      return new Promise((_, reject) => {
        if (timeoutMs !== undefined) setTimeout(() => reject(new Error('deadline exceeded')), timeoutMs);
      });
    };
    const book = new AdmissionLeases();
    const ask = book.begin(shard);
    book.settle(shard, ask, await take({ leaseId: ask.leaseId, reports: [], units: 4 }), take);
    expect(book.admit(shard, send())).toBeDefined();
    serving = false;
    // The lease ends: its renewal goes out in the background, and hangs.
    await jest.advanceTimersByTimeAsync(8_000);
    expect(asked).toEqual([4, 4]);

    let closed = false;
    void book.handBack(undefined, { timeoutMs: 2_000 }).then(() => (closed = true));
    await jest.advanceTimersByTimeAsync(3_999);
    expect(closed).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    // Two seconds for the renewal in flight, two for the hand-back, which that renewal answers.
    expect(closed).toBe(true);
  });
});
