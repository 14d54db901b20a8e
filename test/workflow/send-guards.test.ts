/**
 * The send guards against SMS pumping, through the client helpers against the real dev server and
 * the sandbox: the country allow-list, the sharded country budget, the per-IP, per-device and
 * per-block caps, the exempt numbers and the operator's controls. Every refusal is shown to write
 * nothing to Temporal (no window, no event in the guard's history) and to call nothing at Prelude,
 * counted against the sandbox's own record of the calls it applied.
 */
import { checkCode, startVerification, VerificationError } from '../../src/client';
import { guardShardOf } from '../../src/guards/check';
import { countryGuardUsage, resetCountryGuard, setCountryBudget } from '../../src/guards/admin';
import { windowId } from '../../src/client';
import { givenBackPerNumber } from '../../workflows/send-guard-messages';
import { eventually } from '../support/eventually';
import { startStack, type TestStack } from '../support/stack';

/** A fresh UK mobile number: `block` picks the range (+44 7400 BBB xxx), `n` the number in it. */
const ukNumber = (block: number, n: number) =>
  `+447400${String(block).padStart(3, '0')}${String(n).padStart(3, '0')}`;
const phone = (value: string) => ({ type: 'phone_number' as const, value });

describe('send guards', () => {
  let stack: TestStack;
  /** A different range for each test, so that no test meets another's counts. */
  let nextBlock = 0;
  const freshBlock = () => nextBlock++;

  beforeAll(async () => {
    stack = await startStack({
      env: {
        GUARD_COUNTRIES: 'GB,FR,DE',
        GUARD_COUNTRY_BUDGETS: 'DE:6',
        GUARD_SHARDS: '2',
        GUARD_IP_SENDS: '3',
        GUARD_DEVICE_SENDS: '2',
        GUARD_BLOCK_NUMBERS: '3',
        GUARD_EXEMPT_NUMBERS: '+4915100000999,+447400999*',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  /** Sets the number-block guard's mode for the test; each test starts from `enforce`. */
  const setBlockMode = (mode: (typeof stack.options.guards.block)['mode']) => {
    stack.options.guards = { ...stack.options.guards, block: { ...stack.options.guards.block, mode } };
  };
  afterEach(() => setBlockMode('enforce'));

  const send = (value: string, signals?: Record<string, string>) =>
    startVerification(stack.client, { target: phone(value), ...(signals ? { signals } : {}) }, stack.options);
  const refusal = (value: string, signals?: Record<string, string>) =>
    send(value, signals).then(
      () => undefined,
      (error: unknown) => error,
    );
  /** Creates the sandbox carried out for a number. */
  const creates = async (value: string) => (await stack.appliedCalls(value, 'verification.create')).length;

  /** The history length of the guard shard that counts `value` (0 when it never ran). */
  const shardHistory = async (value: string) => {
    try {
      const described = await stack.client.workflow
        .getHandle(guardShardOf(value, stack.options).workflowId)
        .describe();
      return described.historyLength;
    } catch {
      return 0;
    }
  };

  /**
   * Sends to `value` expecting the guard's refusal `code`, and shows that the refusal wrote nothing:
   * the guard's history is as long as before, no window exists, and the sandbox applied no call.
   */
  async function expectRefusedWritingNothing(
    value: string,
    code: string,
    signals?: Record<string, string>,
  ): Promise<VerificationError> {
    const before = await shardHistory(value);
    const error = await refusal(value, signals);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as VerificationError).code).toBe(code);
    expect(await shardHistory(value)).toBe(before);
    await expect(
      stack.client.workflow.getHandle(windowId(phone(value), stack.options.idKey)).describe(),
    ).rejects.toThrow(/not found/i);
    expect(await stack.appliedCalls(value)).toEqual([]);
    return error as VerificationError;
  }

  it('refuses a country off the allow-list before anything is written or sent', async () => {
    const error = await expectRefusedWritingNothing('+81901234567', 'country_not_allowed');
    expect(error.retryAfterSeconds).toBeUndefined();
    // The guard needs no entity to say no: none was started for the country.
    expect(await shardHistory('+81901234567')).toBe(0);
    // Allowed countries are unaffected.
    expect((await send(ukNumber(freshBlock(), 1))).status).toBe('success');
  });

  it("spends a country's budget over its shards, then refuses that country only", async () => {
    // DE's budget is 6, over 2 shards; each number in a range of its own, so only the budget binds.
    const numbers = Array.from({ length: 16 }, (_, i) => `+4915112${String(i).padStart(2, '0')}0001`);
    const answers: unknown[] = [];
    for (const value of numbers) answers.push(await refusal(value));
    const granted = numbers.filter((_, i) => answers[i] === undefined);
    expect(granted).toHaveLength(6);
    const sent = await Promise.all(numbers.map(creates));
    expect(sent.reduce((a, b) => a + b, 0)).toBe(6);
    for (const answer of answers.filter(Boolean)) {
      expect(answer).toMatchObject({
        code: 'country_budget_exhausted',
        retryAfterSeconds: expect.any(Number),
      });
      expect((answer as VerificationError).retryAfterSeconds).toBeGreaterThan(3_000);
    }
    await expectRefusedWritingNothing('+4915113990001', 'country_budget_exhausted');

    // Another country still sends, and an exempt number of the exhausted one still verifies.
    expect((await send(ukNumber(freshBlock(), 1))).status).toBe('success');
    const exempt = phone('+4915100000999');
    expect((await send(exempt.value)).status).toBe('success');
    const code = await stack.latestCode(exempt.value);
    expect((await checkCode(stack.client, { target: exempt, code }, stack.options)).status).toBe('success');

    // The operator lifts the budget at run time: the country sends again; removing it restores it.
    const lifted = await setCountryBudget(stack.client, 'DE', { sends: 8 }, stack.options);
    expect(lifted).toMatchObject({ country: 'DE', shards: 2, sendsUsed: 6, sendsLeft: 2 });
    expect((await send('+4915113990001')).status).toBe('success');
    expect(await countryGuardUsage(stack.client, 'DE', stack.options)).toMatchObject({ sendsUsed: 7 });
    await setCountryBudget(stack.client, 'DE', null, stack.options);
    await expectRefusedWritingNothing('+4915113980001', 'country_budget_exhausted');
    // A reset forgets what was counted.
    expect(await resetCountryGuard(stack.client, 'DE', stack.options)).toMatchObject({
      sendsUsed: 0,
      sendsLeft: 6,
    });
    expect((await send('+4915113980001')).status).toBe('success');
  });

  it('caps the sends of one IP address, whatever the numbers', async () => {
    setBlockMode('off');
    const block = freshBlock();
    const ip = { ip: '203.0.113.7' };
    for (let n = 1; n <= 3; n++) expect((await send(ukNumber(block, n), ip)).status).toBe('success');
    const error = await expectRefusedWritingNothing(ukNumber(block, 4), 'ip_rate_limited', ip);
    expect(error.retryAfterSeconds).toBeGreaterThan(3_000);
    // Another IP, and no IP at all (absent signals are not an error), still pass.
    expect((await send(ukNumber(block, 5), { ip: '203.0.113.8' })).status).toBe('success');
    expect((await send(ukNumber(block, 6))).status).toBe('success');
  });

  it('caps the sends of one device, whatever the numbers and IPs', async () => {
    setBlockMode('off');
    const block = freshBlock();
    const device = (ip: string) => ({ device_id: 'device-1f3a', ip });
    expect((await send(ukNumber(block, 1), device('198.51.100.1'))).status).toBe('success');
    expect((await send(ukNumber(block, 2), device('198.51.100.2'))).status).toBe('success');
    await expectRefusedWritingNothing(ukNumber(block, 3), 'device_rate_limited', device('198.51.100.3'));
  });

  it('refuses many fresh numbers of one range within minutes, but not a resend to one of them', async () => {
    const block = freshBlock();
    for (let n = 1; n <= 3; n++) expect((await send(ukNumber(block, n))).status).toBe('success');
    const error = await expectRefusedWritingNothing(ukNumber(block, 4), 'number_block_velocity');
    expect(error.retryAfterSeconds).toBeGreaterThan(500);
    // A number the range has already seen is not a fresh one.
    expect((await send(ukNumber(block, 2))).status).toBe('retry');
    // Another range of the same country is unaffected.
    expect((await send(ukNumber(freshBlock(), 1))).status).toBe('success');
  });

  it('in monitor mode, flags the same velocity and lets the sends through', async () => {
    setBlockMode('monitor');
    const block = freshBlock();
    const flags: unknown[] = [];
    for (let n = 1; n <= 5; n++) flags.push((await send(ukNumber(block, n))).guard?.flags);
    expect(flags).toEqual([[], [], [], ['number_block_velocity'], ['number_block_velocity']]);
    expect(await creates(ukNumber(block, 5))).toBe(1);
  });

  it('lets exempt numbers and ranges (test numbers) through every guard', async () => {
    const ip = { ip: '192.0.2.55', device_id: 'device-exempt' };
    for (let n = 1; n <= 6; n++) {
      expect((await send(`+447400999${String(n).padStart(3, '0')}`, ip)).guard).toBeUndefined();
    }
    // The exempt sends counted nothing against that IP.
    const block = freshBlock();
    for (let n = 1; n <= 2; n++) expect((await send(ukNumber(block, n), ip)).status).toBe('success');
  });

  it('counts a retried send (same Idempotency-Key) once', async () => {
    setBlockMode('off');
    const block = freshBlock();
    const signals = { ip: '203.0.113.99' };
    const target = phone(ukNumber(block, 1));
    for (let i = 0; i < 5; i++) {
      const answer = await startVerification(
        stack.client,
        { target, signals, idempotencyKey: 'signup-42' },
        stack.options,
      );
      expect(answer.status).toBe('success');
    }
    // Two more sends from that IP pass: the five retries counted one (the cap is 3).
    expect((await send(ukNumber(block, 2), signals)).status).toBe('success');
    expect((await send(ukNumber(block, 3), signals)).status).toBe('success');
    await expectRefusedWritingNothing(ukNumber(block, 4), 'ip_rate_limited', signals);
  });

  it("gives back what a send its window refused was counted: early resends spend no one's share", async () => {
    setBlockMode('off');
    const block = freshBlock();
    const signals = { ip: '203.0.113.120', device_id: 'device-early' };
    const target = phone(ukNumber(block, 1));
    const withCooldown = { ...stack.options, policy: { ...stack.options.policy, resendCooldownSeconds: 60 } };
    const before = await countryGuardUsage(stack.client, 'GB', stack.options);

    expect((await startVerification(stack.client, { target, signals }, withCooldown)).status).toBe('success');
    // A user tapping resend too early, four times: each told to wait, as the window decides.
    for (let i = 0; i < 4; i++) {
      const early = await startVerification(stack.client, { target, signals }, withCooldown).catch(
        (error: unknown) => error,
      );
      expect(early).toMatchObject({ code: 'premature_retry' });
    }
    // The device's cap is 2 sends: had the early resends been counted, this one would be refused.
    const second = ukNumber(block, 2);
    expect((await send(second, signals)).status).toBe('success');
    await expectRefusedWritingNothing(ukNumber(block, 3), 'device_rate_limited', signals);

    // Against the truth: Prelude got two creates, and the country's shards counted two sends.
    expect((await creates(target.value)) + (await creates(second))).toBe(2);
    const after = await countryGuardUsage(stack.client, 'GB', stack.options);
    expect(after.sendsUsed - before.sendsUsed).toBe(2);
  });

  it("gives back the country's share of a send Prelude answered only with errors, not the IP's", async () => {
    setBlockMode('off');
    const block = freshBlock();
    const signals = { ip: '203.0.113.130' };
    const before = await countryGuardUsage(stack.client, 'GB', stack.options);
    // Prelude fails every attempt of the send (three): no code goes out.
    await stack.configureSandbox({ failNextCalls: { 'verification.create': 3 } });
    expect(await refusal(ukNumber(block, 1), signals)).toMatchObject({
      code: 'prelude_unavailable',
      nothingSent: true,
    });
    // Against the truth: Prelude sent nothing, and the country's shards count nothing more.
    expect(await creates(ukNumber(block, 1))).toBe(0);
    expect((await countryGuardUsage(stack.client, 'GB', stack.options)).sendsUsed).toBe(before.sendsUsed);
    // The IP's share stays counted (its cap is 3): two more sends from it, then its refusal.
    expect((await send(ukNumber(block, 2), signals)).status).toBe('success');
    expect((await send(ukNumber(block, 3), signals)).status).toBe('success');
    await expectRefusedWritingNothing(ukNumber(block, 4), 'ip_rate_limited', signals);
    const after = await countryGuardUsage(stack.client, 'GB', stack.options);
    expect(after.sendsUsed - before.sendsUsed).toBe(2);
  });

  /** The history length of the shard counting `value`, once it has applied what it was sent. */
  const settledShardHistory = async (value: string) => {
    const shard = stack.client.workflow.getHandle(guardShardOf(value, stack.options).workflowId);
    // A release's workflow task is written after its signal.
    await eventually(async () => !(await shard.describe()).raw.pendingWorkflowTask, {
      description: 'the shard has applied the last release',
    });
    return shardHistory(value);
  };

  /** A send that answers its refusal rather than throwing it. */
  const answerOf = (value: string, options: typeof stack.options) =>
    startVerification(stack.client, { target: phone(value) }, options).then(
      (sent) => sent,
      (error: unknown) => error as VerificationError,
    );

  it('answers early resends as the window did, writing nothing, until its cooldown ends', async () => {
    setBlockMode('off');
    const block = freshBlock();
    const number = ukNumber(block, 1);
    const withCooldown = { ...stack.options, policy: { ...stack.options.policy, resendCooldownSeconds: 3 } };
    expect(await answerOf(number, withCooldown)).toMatchObject({ status: 'success' });
    // The first early resend is granted, refused by the window, and given back with its wait.
    expect(await answerOf(number, withCooldown)).toMatchObject({ code: 'premature_retry' });

    // The next ones get the same answer from the shard, before anything is written.
    const before = await settledShardHistory(number);
    for (let i = 0; i < 10; i++) {
      const early = await answerOf(number, withCooldown);
      expect(early).toMatchObject({ code: 'premature_retry' });
      expect((early as VerificationError).retryAfterSeconds).toBeLessThanOrEqual(3);
    }
    expect(await shardHistory(number)).toBe(before);
    // The number's neighbours in the shard are unaffected.
    const neighbour = ukNumber(block, 2);
    expect(guardShardOf(neighbour, stack.options).workflowId).toBe(
      guardShardOf(number, stack.options).workflowId,
    );
    expect((await send(neighbour)).status).toBe('success');
    // Once the cooldown is over, the resend goes out.
    const resent = await eventually(
      async () => {
        const answer = await answerOf(number, withCooldown);
        return answer instanceof VerificationError ? undefined : answer;
      },
      { description: 'the resend accepted after the 3 s cooldown', intervalMs: 250 },
    );
    expect(resent).toMatchObject({ status: 'retry', sendsUsed: 2 });
    expect(await creates(number)).toBe(2);
  });

  it('stops a client hammering a number its window keeps refusing, writing nothing', async () => {
    setBlockMode('off');
    const number = ukNumber(freshBlock(), 1);
    const oneSend = { ...stack.options, policy: { ...stack.options.policy, maxSends: 1 } };
    expect(await answerOf(number, oneSend)).toMatchObject({ status: 'success' });
    // Each further send is granted, refused by the window, and given back: writes to the shard.
    for (let i = 0; i < givenBackPerNumber; i++) {
      expect(await answerOf(number, oneSend)).toMatchObject({ code: 'too_many_attempts' });
    }
    // Then the shard gives the window's answer itself, writing nothing.
    const before = await settledShardHistory(number);
    for (let i = 0; i < 10; i++) {
      const refused = await answerOf(number, oneSend);
      expect(refused).toMatchObject({ code: 'too_many_attempts' });
    }
    expect(await shardHistory(number)).toBe(before);
    expect(await creates(number)).toBe(1);
  });
});
