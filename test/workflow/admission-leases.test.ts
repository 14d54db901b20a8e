/**
 * The send guards' admission leases against the real dev server and the sandbox, with several
 * processes (each Temporal client is a holder of its own) sending at once, and one that dies with
 * sends it never reported. Every count is the sandbox's: the SMS that went out never pass a cap,
 * and once the leases are reported the caps are met exactly.
 */
import { Client, Connection } from '@temporalio/client';
import { startVerification, VerificationError } from '../../src/client';
import { clientConnectionOptions } from '../../src/connection';
import { countryGuardUsage } from '../../src/guards/admin';
import { giveBackGrant, guardSend, guardShardOf } from '../../src/guards/check';
import { admissionLeasesOf, returnAdmissionLeases } from '../../src/guards/leases';
import { loadConfig } from '../../temporal.config';
import { guardUsageQuery, setBudgetUpdate } from '../../workflows/send-guard-messages';
import { everyGuardAnswer, picker, plainGuardCount, type ModelSend } from '../support/guard-model';
import { eventually } from '../support/eventually';
import { startStack, type TestStack } from '../support/stack';

/** A fresh UK mobile number: `block` picks the range (+44 7400 BBB xxx), `n` the number in it. */
const ukNumber = (block: number, n: number) =>
  `+447400${String(block).padStart(3, '0')}${String(n).padStart(3, '0')}`;
const phone = (value: string) => ({ type: 'phone_number' as const, value });

describe('admission leases', () => {
  let stack: TestStack;
  let nextBlock = 0;
  /** `count` numbers, each in a range of its own (so that only the cap under test binds). */
  const freshNumbers = (count: number) => Array.from({ length: count }, () => ukNumber(nextBlock++, 1));

  beforeAll(async () => {
    stack = await startStack({
      env: {
        GUARD_COUNTRIES: 'GB',
        GUARD_SHARDS: '1',
        GUARD_COUNTRY_SENDS: '1000',
        GUARD_IP_SENDS: '3',
        GUARD_DEVICE_SENDS: '1000',
        GUARD_BLOCK_NUMBERS: '1000',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Another process's client: a holder of its own, on a connection of its own. */
  async function otherProcess(): Promise<Client> {
    const connection = await Connection.connect(
      clientConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS }).temporal),
    );
    return new Client({ connection, dataConverter: stack.dataConverter });
  }
  const send = (client: Client, value: string, signals?: Record<string, string>) =>
    startVerification(client, { target: phone(value), ...(signals ? { signals } : {}) }, stack.options).then(
      (sent) => sent.status,
      (error: unknown) => (error instanceof VerificationError ? error.code : String(error)),
    );
  /** The creates the sandbox carried out for `numbers`: the SMS that went out. */
  const smsTo = async (numbers: string[]) => {
    const counts = await Promise.all(
      numbers.map(async (value) => (await stack.appliedCalls(value, 'verification.create')).length),
    );
    return counts.reduce((a, b) => a + b, 0);
  };
  const shard = () => stack.client.workflow.getHandle(guardShardOf(ukNumber(0, 1), stack.options).workflowId);

  it('lets three processes sending at once from one IP pass its cap never, and meet it once reported', async () => {
    const processes = [stack.client, await otherProcess(), await otherProcess()];
    try {
      const signals = { ip: '198.51.100.7' };
      // Each process's first send of the shard brings it a lease; then 4 at once from each.
      const warmUp = freshNumbers(3);
      await Promise.all(processes.map((client, i) => send(client, warmUp[i]!)));
      const numbers = processes.map(() => freshNumbers(4));
      const answers = await Promise.all(
        processes.map((client, i) => Promise.all(numbers[i]!.map((value) => send(client, value, signals)))),
      );
      const all = numbers.flat();
      const granted = answers.flat().filter((answer) => answer === 'success').length;
      expect(answers.flat().filter((answer) => answer !== 'success')).toEqual(
        Array(all.length - granted).fill('ip_rate_limited'),
      );
      expect(await smsTo(all)).toBe(granted);
      expect(granted).toBeLessThanOrEqual(3);
      expect(granted).toBeGreaterThanOrEqual(1);

      // Reported: the IP gets exactly what its cap has left, from any process.
      await Promise.all(processes.map((client) => returnAdmissionLeases(client)));
      const more = freshNumbers(4);
      const after: string[] = [];
      for (const value of more) after.push(await send(processes[1]!, value, signals));
      expect(after.filter((answer) => answer === 'success')).toHaveLength(3 - granted);
      expect(await smsTo([...all, ...more])).toBe(3);
    } finally {
      await Promise.all(processes.slice(1).map((client) => client.connection.close()));
    }
  });

  it("spends a country's budget across processes never past it, and to the last send once reported", async () => {
    await shard().executeUpdate(setBudgetUpdate, { args: [{ sends: 30, burst: 30 }] });
    const processes = [stack.client, await otherProcess()];
    try {
      const used = (await shard().query(guardUsageQuery)).sendsUsed;
      const numbers = processes.map(() => freshNumbers(24));
      // 4 in flight per process, 48 sends for what is left of 30.
      const answers = await Promise.all(
        processes.map(async (client, i) => {
          const mine = [...numbers[i]!];
          const out: string[] = [];
          await Promise.all(
            Array.from({ length: 4 }, async () => {
              for (let value = mine.shift(); value; value = mine.shift()) out.push(await send(client, value));
            }),
          );
          return out;
        }),
      );
      const granted = answers.flat().filter((answer) => answer === 'success').length;
      expect(new Set(answers.flat())).toEqual(new Set(['success', 'country_budget_exhausted']));
      expect(await smsTo(numbers.flat())).toBe(granted);
      expect(granted).toBeLessThanOrEqual(30 - used);

      await Promise.all(processes.map((client) => returnAdmissionLeases(client)));
      const more = freshNumbers(30 - used - granted + 2);
      const after: string[] = [];
      for (const value of more) after.push(await send(processes[1]!, value));
      expect(after.filter((answer) => answer === 'success')).toHaveLength(30 - used - granted);
      expect(await smsTo([...numbers.flat(), ...more])).toBe(30 - used);
      expect(await shard().query(guardUsageQuery)).toMatchObject({ sendsUsed: 30, sendsLeft: 0 });
    } finally {
      await processes[1]!.connection.close();
      await shard().executeUpdate(setBudgetUpdate, { args: [null] });
    }
  });

  it("shows the operator another process's unreported sends as leased, and counts them once reported", async () => {
    const other = await otherProcess();
    try {
      const before = await countryGuardUsage(stack.client, 'GB', stack.options);
      // Its first send asks the shard (and brings a lease); the next three are the lease's.
      const numbers = freshNumbers(4);
      for (const value of numbers) expect(await send(other, value)).toBe('success');
      const during = await countryGuardUsage(stack.client, 'GB', stack.options);
      expect(during.sendsUsed - before.sendsUsed).toBe(1);
      expect(during.leased).toBeGreaterThanOrEqual(3);
      expect(during.sendsLeft).toBe(1000 - during.sendsUsed - during.leased!);

      await returnAdmissionLeases(other);
      const after = await countryGuardUsage(stack.client, 'GB', stack.options);
      expect(after.sendsUsed - before.sendsUsed).toBe(await smsTo(numbers));
      expect(after.sendsUsed - before.sendsUsed).toBe(4);
      expect(after.leased ?? 0).toBe(before.leased ?? 0);
    } finally {
      await returnAdmissionLeases(other);
      await other.connection.close();
    }
  });

  it('keeps what a dead process admitted and never reported counted: the cap holds', async () => {
    const signals = { ip: '198.51.100.9' };
    const dying = await otherProcess();
    const first = freshNumbers(2);
    // The first send asks the shard (and brings a lease), the second is admitted under the lease.
    expect(await send(dying, first[0]!, signals)).toBe('success');
    expect(await send(dying, first[1]!, signals)).toBe('success');
    // The process dies before it reports: its lease's flush can no longer reach the shard.
    await dying.connection.close();

    const survivor = await otherProcess();
    try {
      const more = freshNumbers(3);
      const answers: string[] = [];
      for (const value of more) answers.push(await send(survivor, value, signals));
      expect(answers).toEqual(['success', 'ip_rate_limited', 'ip_rate_limited']);
      expect(await smsTo([...first, ...more])).toBe(3);
    } finally {
      await returnAdmissionLeases(survivor);
      await survivor.connection.close();
    }
  });

  it("counts the sends of a process whose clock is two hours behind at the shard's time: the cap holds", async () => {
    // Spanish mobiles, each in a range of its own: a shard no other test's leases hold a reserve of.
    const options = { ...stack.options, guards: { ...stack.options.guards, countries: '*' as const } };
    const numbers = Array.from({ length: 9 }, (_, i) => `+34612${String(100 + i)}001`);
    const signals = { ip: '198.51.100.21' };
    const sendFrom = (client: Client, value: string) =>
      startVerification(client, { target: phone(value), signals }, options).then(
        (sent) => sent.status,
        (error: unknown) => (error instanceof VerificationError ? error.code : String(error)),
      );
    const skewed = await otherProcess();
    // Its book's clock is two hours behind; Temporal's and the sandbox's are right.
    admissionLeasesOf(skewed, { clock: () => Date.now() - 2 * 3_600_000 });
    try {
      const answers: string[] = [];
      // Each round: a send the shard judges (it brings a lease), one the lease admits, then the
      // lease reported. Counted two hours back, each admitted send would leave the IP's hour at once
      // (5 SMS went out so).
      for (let round = 0; round < 4; round++) {
        answers.push(await sendFrom(skewed, numbers[2 * round]!));
        answers.push(await sendFrom(skewed, numbers[2 * round + 1]!));
        await returnAdmissionLeases(skewed);
      }
      expect(answers.filter((answer) => answer === 'success')).toHaveLength(3);
      expect(await smsTo(numbers.slice(0, 8))).toBe(3);
      // And for every other process too.
      expect(await sendFrom(stack.client, numbers[8]!)).toBe('ip_rate_limited');
      expect(await smsTo(numbers)).toBe(3);
    } finally {
      await returnAdmissionLeases(skewed);
      await skewed.connection.close();
    }
  });

  it('decides 300 random sends of one process as a plain count of every key does, give-backs included', async () => {
    // German numbers: shards of their own. Small caps and small pools of keys, so that every guard
    // refuses often; one period for the whole run, however long the machine takes over it.
    const guards = {
      ...stack.options.guards,
      country: { ...stack.options.guards.country, sends: 40, burst: 30, burstSeconds: 3_600 },
      ip: { sends: 3, periodSeconds: 3_600 },
      device: { sends: 2, periodSeconds: 3_600 },
      block: { ...stack.options.guards.block, numbers: 3, periodSeconds: 3_600 },
      countries: '*' as const,
    };
    const options = { ...stack.options, guards };
    const holder = await otherProcess();
    const pick = picker(11);
    const model = plainGuardCount({ burst: 30, ip: 3, device: 2, blockNumbers: 3 });
    const mismatches: string[] = [];
    const answers = new Set<string>();
    let local = 0;
    try {
      for (let i = 0; i < 300; i++) {
        const block = pick(4);
        const r: ModelSend = {
          ...(pick(4) > 0 ? { ip: `198.51.100.${pick(12)}` } : {}),
          ...(pick(4) > 0 ? { device: `device-${pick(20)}` } : {}),
          block,
          number: `+4915112${block}0${String(pick(5)).padStart(3, '0')}`,
        };
        const want = model.expected(r);
        const signals = { ...(r.ip ? { ip: r.ip } : {}), ...(r.device ? { device_id: r.device } : {}) };
        const sent = await guardSend(
          holder,
          { target: phone(r.number), signals, requestId: `model-${i}` },
          options,
        ).then(
          (passed) => passed,
          (error: unknown) => (error instanceof VerificationError ? error.code : String(error)),
        );
        const got = typeof sent === 'string' ? sent : 'granted';
        answers.add(got);
        if (got !== want) mismatches.push(`send ${i}: ${JSON.stringify(r)} got ${got}, expected ${want}`);
        if (typeof sent === 'string') continue;
        if (sent.grant?.local) local += 1;
        // Half the grants are given back (their window refused the send): the model forgets each,
        // then answers as the window did, for the cooldown it told (one in twelve), or once a number
        // was given back too often.
        if (pick(2) === 0) {
          const early = pick(12) === 0;
          const refusal = early
            ? new VerificationError('premature_retry', 'cooldown', 3_600)
            : new VerificationError('too_many_attempts', 'used');
          await giveBackGrant(holder, sent.grant, refusal);
          model.givenBack(r, refusal.code, { cooldown: early });
        } else {
          model.sent(r);
        }
      }
    } finally {
      await returnAdmissionLeases(holder);
      await holder.connection.close();
    }
    expect(mismatches).toEqual([]);
    expect([...answers].sort()).toEqual(everyGuardAnswer);
    // Most grants were the lease's, and the shard, told of them all, counts what the model does.
    expect(local).toBeGreaterThan(10);
    const usage = await stack.client.workflow
      .getHandle(guardShardOf('+491511200000', options).workflowId)
      .query(guardUsageQuery);
    expect(usage).toMatchObject({ sendsUsed: model.granted.length });
    expect(usage.leased).toBeUndefined();
  }, 120_000);

  it('asks the shard once per lease, not per send, and reports by itself once idle', async () => {
    const holder = await otherProcess();
    // Its lease is handed back as soon as it is unused (by default it is kept warm for 30 s after
    // the last send, renewed in the background: test/unit/admission-leases.test.ts).
    admissionLeasesOf(holder, { keepWarmMs: 0 });
    try {
      const before = await shard()
        .describe()
        .then(
          (described) => described,
          () => ({ historyLength: 0 }),
        );
      // Leases of earlier tests' processes: the dead one's stays reserved for its periods.
      const leasedBefore = await shard()
        .query(guardUsageQuery)
        .then(
          (usage) => usage.leased ?? 0,
          () => 0,
        );
      const numbers = freshNumbers(24);
      for (const value of numbers) expect(await send(holder, value)).toBe('success');
      const history = await shard().fetchHistory();
      const accepted = (history.events ?? [])
        .slice(before.historyLength)
        .filter((event) => event.workflowExecutionUpdateAcceptedEventAttributes).length;
      // Leases of 4, 8 and 16 units: three requests for 24 sends (one per send without leases).
      expect(accepted).toBeLessThanOrEqual(4);
      expect(await smsTo(numbers)).toBe(24);
      // Idle, the process reports its lease when its time is up, and holds none.
      const usedBefore = (await shard().query(guardUsageQuery)).sendsUsed;
      await eventually(async () => ((await shard().query(guardUsageQuery)).leased ?? 0) === leasedBefore, {
        timeoutMs: 20_000,
        description: 'the idle lease is handed back',
      });
      expect((await shard().query(guardUsageQuery)).sendsUsed).toBeGreaterThan(usedBefore);
    } finally {
      await holder.connection.close();
    }
  });
});
