/**
 * SMS pumping played against the real stack over HTTP, as an attacker plays it: fresh numbers of one
 * range, one code each, from one IP and then from rotating IPs. What the guards let through is
 * counted against the sandbox's record of the creates it applied, and against the windows Temporal
 * holds; meanwhile another country and an exempt number of the attacked one keep verifying.
 */
import { randomInt } from 'node:crypto';
import type { CallRecord } from '../../src/sandbox';
import { api, type Answer } from '../support/api';
import { startStack, uniquePhoneNumber, type TestStack } from '../support/stack';

/** Runs `count` tasks, `inFlight` at a time, and gives their results in order. */
async function pool<T>(count: number, inFlight: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/**
 * Prelude's own resend delay, as it is by default: under load a send's attempt can time out after
 * Prelude took it, and the next attempt's create then meets this delay. It is refused (no second
 * SMS) and read by the window as the code sent. (The test stacks' sandbox has no delay, so that
 * tests resend at once: there, that create sent a second SMS.)
 */
const preludeResendDelay = { SANDBOX_MIN_RETRY_DELAY_SECONDS: '30' };

/** The SMS the sandbox sent to `numbers` (its inbox: the codes that went out), by number. */
async function smsTo(stack: TestStack, numbers: readonly string[]): Promise<Map<string, number>> {
  const response = await fetch(`${stack.sandbox.url}/sandbox/messages`);
  const { messages } = (await response.json()) as { messages: { to: string }[] };
  const wanted = new Set(numbers);
  const perNumber = new Map<string, number>();
  for (const { to } of messages) if (wanted.has(to)) perNumber.set(to, (perNumber.get(to) ?? 0) + 1);
  return perNumber;
}

const total = (perNumber: Map<string, number>) => [...perNumber.values()].reduce((a, b) => a + b, 0);

/** The numbers of `numbers` whose send was answered `sent`, each with the one SMS it should have had. */
const oneSmsPerSent = (numbers: readonly string[], answers: Answer[]) =>
  new Map(numbers.flatMap((number, i) => (answers[i]?.status === 200 ? [[number, 1] as const] : [])));

/** A counter of the service's `/metrics`, by its labels. */
async function counter(stack: TestStack, name: string, labels: Record<string, string>): Promise<number> {
  const page = await (await fetch(`${stack.serverUrl}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = page
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && wanted.every((label) => l.includes(label)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const byCode = (answers: Answer[]) =>
  answers.reduce<Record<string, number>>((counts, { status, body }) => {
    const key = status === 200 ? 'sent' : `${status} ${body.code}`;
    counts[key] = (counts[key] ?? 0) + 1;
    return counts;
  }, {});

/** Sends a code and checks it, as a real user does; gives the check's status. */
async function verifies(stack: TestStack, value: string): Promise<string> {
  const target = { type: 'phone_number', value };
  const sent = await api(stack, 'POST', '/verifications', { target, signals: { ip: '192.0.2.200' } });
  if (sent.status !== 200) return `send ${sent.status} ${sent.body.code}`;
  const code = await stack.latestCode(value);
  const checked = await api(stack, 'POST', '/verifications/check', { target, code });
  return checked.body.status;
}

describe('an SMS pumping attack over HTTP', () => {
  describe('with a configured budget', () => {
    const adminToken = 'an-admin-token-for-the-pumping-test';
    const admin = { authorization: `Bearer ${adminToken}` };
    let stack: TestStack;
    beforeAll(async () => {
      stack = await startStack({
        withServer: true,
        adminToken,
        sandboxEnv: preludeResendDelay,
        env: {
          GUARD_COUNTRY_BUDGETS: 'GB:60',
          GUARD_COUNTRY_BURST: '1000',
          GUARD_SHARDS: '2',
          GUARD_IP_SENDS: '10',
          // Flagged, not refused: here the budget and the IP cap are what stop the attack.
          GUARD_BLOCK_MODE: 'monitor',
          GUARD_EXEMPT_NUMBERS: '+447400999001',
        },
      });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('stops 500 sends at the IP cap and then at the budget, while others keep verifying', async () => {
      // 500 fresh numbers of one range, +44 7400 1BB NNN: 5 blocks of 100 numbers (so that the 60
      // sent fill at least one block past its 10: flagged).
      const numbers = Array.from(
        { length: 500 },
        (_, i) => `+4474001${String(i % 5).padStart(2, '0')}${String(Math.floor(i / 5)).padStart(3, '0')}`,
      );
      const send = (value: string, ip: string) =>
        api(stack, 'POST', '/verifications', { target: { type: 'phone_number', value }, signals: { ip } });

      // From one IP: 10 per shard (the cap is kept in each of the country's 2 shards).
      const fromOneIp = await pool(250, 8, (i) => send(numbers[i]!, '203.0.113.66'));
      expect(byCode(fromOneIp)).toEqual({ sent: 20, '429 ip_rate_limited': 230 });
      expect(await smsTo(stack, numbers.slice(0, 250))).toEqual(oneSmsPerSent(numbers, fromOneIp));

      // From a fresh IP each time, while a French user and an exempt UK number verify.
      const [rotating, french, exempt] = await Promise.all([
        pool(250, 8, (i) => send(numbers[250 + i]!, `198.51.${randomInt(0, 255)}.${i % 250}`)),
        verifies(stack, uniquePhoneNumber()),
        verifies(stack, '+447400999001'),
      ]);
      expect([french, exempt]).toEqual(['success', 'success']);
      // The budget is 60 SMS for the period: 40 were left.
      expect(byCode(rotating)).toEqual({ sent: 40, '429 country_budget_exhausted': 210 });
      for (const refused of rotating.filter((a) => a.status === 429)) {
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3_000);
      }
      // Against the truth: the SMS Prelude sent, and the windows Temporal holds.
      const sms = await smsTo(stack, numbers);
      expect(sms).toEqual(oneSmsPerSent(numbers, [...fromOneIp, ...rotating]));
      expect(total(sms)).toBe(60);
      const windows = await stack.client.workflow.count(
        `TaskQueue = "${stack.taskQueue}" AND WorkflowType = "verificationWorkflow"`,
      );
      // The attack's 60, the French user's and the exempt number's.
      expect(windows.count).toBeLessThanOrEqual(62);

      // The operator sees each refusal by reason, and the range's velocity flagged.
      expect(
        await counter(stack, 'prelude_temporal_sends_refused_total', { reason: 'ip_rate_limited' }),
      ).toBe(230);
      expect(
        await counter(stack, 'prelude_temporal_sends_refused_total', {
          reason: 'country_budget_exhausted',
          country: 'GB',
        }),
      ).toBe(210);
      expect(
        await counter(stack, 'prelude_temporal_sends_flagged_total', { reason: 'number_block_velocity' }),
      ).toBeGreaterThan(0);

      // The admin routes: their own token only.
      expect((await api(stack, 'GET', '/admin/guards/GB')).status).toBe(401);
      expect(
        (
          await api(stack, 'GET', '/admin/guards/GB', undefined, {
            authorization: 'Bearer a-wrong-token-1234',
          })
        ).status,
      ).toBe(401);
      const usage = await api(stack, 'GET', '/admin/guards/GB', undefined, admin);
      expect(usage).toMatchObject({
        status: 200,
        body: { country: 'GB', shards: 2, sends_used: 60, sends_left: 0 },
      });

      // Lifted at run time, without a restart: the country sends again, then is back at its budget.
      const lifted = await api(stack, 'PUT', '/admin/guards/GB/budget', { sends: 62 }, admin);
      expect(lifted.body).toMatchObject({ sends_left: 2, budget: { sends: 62 } });
      const afterLift = await pool(10, 2, (i) =>
        send(`+447400200${String(i).padStart(3, '0')}`, `192.0.2.${i}`),
      );
      expect(byCode(afterLift)).toMatchObject({ sent: expect.any(Number) });
      expect(byCode(afterLift).sent).toBeLessThanOrEqual(2);
      expect(
        (await api(stack, 'DELETE', '/admin/guards/GB/budget', undefined, admin)).body,
      ).not.toHaveProperty('budget');
      const reset = await api(stack, 'POST', '/admin/guards/GB/reset', undefined, admin);
      expect(reset.body).toMatchObject({ sends_used: 0, sends_left: 60 });
      expect((await send('+447400300001', '192.0.2.99')).status).toBe(200);
    });
  });

  describe('with the defaults', () => {
    let stack: TestStack;
    beforeAll(async () => {
      stack = await startStack({ withServer: true, sandboxEnv: preludeResendDelay });
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('sends at most 60 SMS of a 200-send burst to fresh numbers from one IP and one device', async () => {
      const signals = { ip: '203.0.113.10', device_id: 'attacker-device-1' };
      // One UK block: +44 7400 500 NNN.
      const oneBlock = Array.from({ length: 200 }, (_, i) => `+447400500${String(i).padStart(3, '0')}`);
      const answers = await pool(200, 8, (i) =>
        api(stack, 'POST', '/verifications', {
          target: { type: 'phone_number', value: oneBlock[i] },
          signals,
        }),
      );
      // The block's 11th fresh number is refused.
      expect(byCode(answers)).toEqual({ sent: 10, '429 number_block_velocity': 190 });
      expect(await smsTo(stack, oneBlock)).toEqual(oneSmsPerSent(oneBlock, answers));
    });

    it('sends at most 60 SMS when the same burst spreads over 200 blocks', async () => {
      const signals = { ip: '203.0.113.11', device_id: 'attacker-device-2' };
      // Three sends lose their first answer after Prelude sent the code, as under load: each next
      // attempt meets Prelude's resend delay, is refused, and the window counts the code sent.
      await stack.configureSandbox({ dropNextAnswers: { 'verification.create': 3 } });
      const spread = Array.from(
        { length: 200 },
        (_, i) => `+447401${String(i).padStart(3, '0')}${randomInt(100, 999)}`,
      );
      const answers = await pool(200, 8, (i) =>
        api(stack, 'POST', '/verifications', { target: { type: 'phone_number', value: spread[i] }, signals }),
      );
      // The device cap (10 per shard, 4 shards) ends it before the IP cap (20 per shard) would.
      expect(Object.keys(byCode(answers)).sort()).toEqual(['429 device_rate_limited', 'sent']);
      const sms = await smsTo(stack, spread);
      expect(total(sms)).toBeLessThanOrEqual(60);
      expect(sms).toEqual(oneSmsPerSent(spread, answers));
      // The three repeated creates reached Prelude, and sent nothing.
      const creates = await fetch(`${stack.sandbox.url}/sandbox/calls?operation=verification.create`);
      const { calls } = (await creates.json()) as { calls: CallRecord[] };
      const refused = calls.filter((call) => spread.includes(call.target.value) && call.status === 429);
      expect(refused.map((call) => call.answer.code)).toEqual(Array(3).fill('premature_retry'));
    });
  });
});
