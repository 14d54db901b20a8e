/**
 * A guard shard that already counts thousands of sends, as continue-as-new hands them over from its
 * previous run: it counts every one of them exactly (budget, per-IP cap, block velocity, the wait it
 * answers), sorts what arrives out of order, and does not count keys whose times all left their
 * period. Against the real dev server; the shard is driven by its own update, as a send drives it.
 */
import { everyGuardAnswer, picker, plainGuardCount } from '../support/guard-model';
import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { guardShardStart, shardLimits } from '../../src/guards/check';
import { sendGuardWorkflow } from '../../workflows/send-guard';
import {
  guardSendUpdate,
  shardRunEvents,
  releaseGuardSignal,
  carriedBytesLimit,
  guardUsageQuery,
  type GuardRequest,
  type SendGuardInput,
  type ShardLimits,
} from '../../workflows/send-guard-messages';
import { startStack, type TestStack } from '../support/stack';

const counted = 3_000;
const minute = 60_000;

describe('a guard shard handed thousands of counted sends', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** The defaults' limits for one shard, with `change` applied. */
  const limitsWith = (change: (limits: ShardLimits) => void): ShardLimits => {
    const limits = structuredClone(shardLimits(stack.options.guards, 'GB', 0));
    change(limits);
    return limits;
  };

  /** Budgets no test reaches: only the guard under test refuses. */
  const unbound = () =>
    limitsWith((l) => {
      l.budget.sends = 10_000_000;
      l.budget.burst = 1_000_000;
    });

  /**
   * A shard's state as its previous run hands it over: `counted` sends, the oldest `oldestAgoMs` ago,
   * each from its own IP (the IP `busy` sent `busyTimes` more, out of order) and to its own block;
   * and keys whose every time left their period (kept by the last run, not counted by this one).
   */
  const handedOver = (limits: ShardLimits, oldestAgoMs: number, busyTimes: number[]): SendGuardInput => {
    const now = Date.now();
    const sends = Array.from(
      { length: counted },
      (_, i) => now - oldestAgoMs + (i * (oldestAgoMs - minute)) / counted,
    );
    const ips = Object.fromEntries(sends.map((at, i) => [`ip-${i}`, [at]]));
    for (let i = 0; i < 50; i++) ips[`gone-${i}`] = [now - 2 * limits.ip.periodSeconds * 1000];
    ips.busy = busyTimes;
    // The blocks' period is shorter: their times are spread over its last half.
    const blockSpan = (limits.block.periodSeconds * 1000) / 2;
    const blocks = Object.fromEntries(
      sends.map((_, i) => [
        `+4474${String(i).padStart(5, '0')}`,
        [{ key: `n-${i}`, at: now - blockSpan + (i * blockSpan) / counted }],
      ]),
    );
    for (let i = 0; i < 50; i++) {
      blocks[`+4476${String(i).padStart(5, '0')}`] = [
        { key: `gone-${i}`, at: now - 2 * limits.block.periodSeconds * 1000 },
      ];
    }
    return { country: 'GB', shard: 0, sends, ips, blocks, recent: [], limits };
  };

  /** A shard's state as its previous run hands it over: `times` sends, all at `at`, and nothing else. */
  const sendsAt = (at: number, times: number, limits: ShardLimits): SendGuardInput => ({
    country: 'GB',
    shard: 0,
    sends: Array.from({ length: times }, () => at),
    recent: [],
    limits,
  });

  /** One guard update, as a send makes it; the first starts the shard from `input`. */
  const guard = (workflowId: string, input: SendGuardInput, request: Partial<GuardRequest> = {}) =>
    stack.client.workflow.executeUpdateWithStart(guardSendUpdate, {
      args: [
        {
          requestId: randomUUID(),
          block: `+4475${randomUUID().slice(0, 5)}`,
          numberKey: randomUUID(),
          limits: input.limits!,
          ...request,
        },
      ],
      startWorkflowOperation: new WithStartWorkflowOperation(sendGuardWorkflow, {
        workflowId,
        taskQueue: stack.options.taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    });

  /** The refusal's type and the wait it answers. */
  const refusalOf = async (answer: Promise<unknown>) => {
    const error = await answer.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    const cause = (error as WorkflowUpdateFailedError).cause as ApplicationFailure;
    const [details] = (cause.details ?? []) as { retryAfterSeconds: number }[];
    return { type: cause.type, retryAfterSeconds: details?.retryAfterSeconds };
  };

  it('counts every handed-over send against the budget, and answers the wait of the oldest', async () => {
    const oldestAgoMs = 50 * minute;
    const limits = limitsWith((l) => {
      l.budget.sends = counted + 1;
      l.budget.burst = counted + 10;
      l.budget.burstSeconds = 3_600;
    });
    const input = handedOver(limits, oldestAgoMs, []);
    const workflowId = `guard-state-budget-${randomUUID()}`;
    await guard(workflowId, input);
    const usage = await stack.client.workflow.getHandle(workflowId).query(guardUsageQuery);
    expect(usage).toMatchObject({ sendsUsed: counted + 1, sendsLeft: 0 });

    const refused = await refusalOf(guard(workflowId, input));
    expect(refused.type).toBe('country_budget_exhausted');
    // The oldest counted send leaves the hour's period in about 10 minutes.
    const expected = (limits.budget.periodSeconds * 1000 - oldestAgoMs) / 1000;
    expect(refused.retryAfterSeconds).toBeGreaterThan(expected - 30);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(expected + 1);
  });

  it('counts an IP handed over out of order, and not the keys whose times all left their period', async () => {
    const limits = unbound();
    const now = Date.now();
    const cap = limits.ip.sends;
    // The IP's times as an older run may have stored them: not ascending, the oldest in the middle.
    const busyTimes = Array.from(
      { length: cap - 1 },
      (_, i) => now - minute * (i % 2 === 0 ? i + 1 : 40 - i),
    );
    const input = handedOver(limits, 50 * minute, busyTimes);
    const workflowId = `guard-state-ip-${randomUUID()}`;
    await guard(workflowId, input, { ipKey: 'busy' });
    const usage = await stack.client.workflow.getHandle(workflowId).query(guardUsageQuery);
    expect(usage.ips).toBe(counted + 1);
    expect(usage.blocks).toBe(counted + 1);

    const refused = await refusalOf(guard(workflowId, input, { ipKey: 'busy' }));
    expect(refused.type).toBe('ip_rate_limited');
    const oldestAgoSeconds = Math.max(...busyTimes.map((t) => (now - t) / 1000));
    expect(refused.retryAfterSeconds).toBeGreaterThan(limits.ip.periodSeconds - oldestAgoSeconds - 30);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(limits.ip.periodSeconds - oldestAgoSeconds + 1);
    // Another IP is not held back by it.
    await expect(guard(workflowId, input, { ipKey: 'another' })).resolves.toEqual({
      flags: [],
      at: expect.any(Number),
    });
  });

  it('refuses a fresh number of a full block handed over', async () => {
    const limits = unbound();
    const input = handedOver(limits, 50 * minute, []);
    const now = Date.now();
    const full = '+447499999';
    input.blocks![full] = Array.from({ length: limits.block.numbers }, (_, i) => ({
      key: `full-${i}`,
      at: now - (limits.block.numbers - i) * 1000,
    }));
    const workflowId = `guard-state-block-${randomUUID()}`;
    await guard(workflowId, input);
    const refused = await refusalOf(guard(workflowId, input, { block: full, numberKey: 'fresh' }));
    expect(refused.type).toBe('number_block_velocity');
    // A number the block already counts is a resend, not a fresh number: it passes.
    await expect(guard(workflowId, input, { block: full, numberKey: 'full-3' })).resolves.toEqual({
      flags: [],
      at: expect.any(Number),
    });
  });

  it('refuses sends once its state is all continue-as-new can carry, and takes them again as counts leave', async () => {
    const limits = unbound();
    const now = Date.now();
    // More than the shard can carry, in sends that leave the hour's period in about 3 seconds.
    const leaving = now - limits.budget.periodSeconds * 1000 + 3_000;
    const times = Math.ceil(carriedBytesLimit / String(leaving).length) + 1_000;
    const input = sendsAt(leaving, times, limits);
    expect(JSON.stringify(input.sends).length).toBeGreaterThan(carriedBytesLimit);
    const workflowId = `guard-state-full-${randomUUID()}`;

    // Refused, with the wait until the counts leave: not left unanswered by a shard that cannot
    // continue as new.
    const refused = await refusalOf(guard(workflowId, input));
    expect(refused.type).toBe('country_budget_exhausted');
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(4);
    const usage = await stack.client.workflow.getHandle(workflowId).query(guardUsageQuery);
    expect(usage.sendsUsed).toBe(times);

    // Once they have left, the shard sweeps them by itself (no grant comes to do it) and grants again.
    // Later sends start the shard as a send does (a shard that ended starts empty).
    const sendsStart: SendGuardInput = { country: 'GB', shard: 0, limits };
    const deadline = Date.now() + 20_000;
    let granted: unknown;
    while (granted === undefined && Date.now() < deadline) {
      granted = await guard(workflowId, sendsStart).catch(async (error: unknown) => {
        expect((await refusalOf(Promise.reject(error))).type).toBe('country_budget_exhausted');
        await new Promise((resolve) => setTimeout(resolve, 500));
        return undefined;
      });
    }
    expect(granted).toEqual({ flags: [], at: expect.any(Number) });
    expect(Date.now() - now).toBeGreaterThan(3_000);
    const after = await stack.client.workflow.getHandle(workflowId).query(guardUsageQuery);
    expect(after.sendsUsed).toBe(1);
    // The full run was never failed or stuck: it swept its counts and ended.
    const runs = [];
    for await (const run of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs.push(run.status.name);
    }
    expect(runs.length).toBeGreaterThan(0);
    expect(runs).not.toContain('FAILED');
    expect(runs).not.toContain('TERMINATED');
  }, 30_000);

  it('fills by its own grants: near the limit it grants what fits, then refuses', async () => {
    const limits = unbound();
    const at = Date.now() - minute;
    // About 2 KB short of what the shard carries.
    const times = Math.floor((carriedBytesLimit - 2_000) / (String(at).length + 1));
    const input = sendsAt(at, times, limits);
    const workflowId = `guard-state-filling-${randomUUID()}`;
    let granted = 0;
    let refused: Awaited<ReturnType<typeof refusalOf>> | undefined;
    while (!refused && granted < 100) {
      const answer = guard(workflowId, input, { ipKey: randomUUID(), deviceKey: randomUUID() });
      if (
        await answer.then(
          () => true,
          () => false,
        )
      )
        granted += 1;
      else refused = await refusalOf(answer);
    }
    // Each grant adds its time, IP, device and block (~190 bytes): about ten fit in 2 KB.
    expect(granted).toBeGreaterThanOrEqual(5);
    expect(granted).toBeLessThanOrEqual(15);
    expect(refused?.type).toBe('country_budget_exhausted');
    const usage = await stack.client.workflow.getHandle(workflowId).query(guardUsageQuery);
    expect(usage.sendsUsed).toBe(times + granted);
  });

  it('decides 300 random sends as a plain count of every key does (budget, burst, IP, device, block), grants given back included', async () => {
    // Small caps and small pools of keys, so that every guard refuses often; all within one period.
    const limits = limitsWith((l) => {
      l.budget.sends = 40;
      l.budget.burst = 30;
      // One period for the whole run, however long the machine takes over it.
      l.budget.burstSeconds = 3_600;
      l.ip.sends = 3;
      l.device.sends = 2;
      l.block.numbers = 3;
    });
    const pick = picker(7);
    const model = plainGuardCount({
      burst: limits.budget.burst,
      ip: limits.ip.sends,
      device: limits.device.sends,
      blockNumbers: limits.block.numbers,
    });
    const workflowId = `guard-state-model-${randomUUID()}`;
    const input: SendGuardInput = { country: 'GB', shard: 0, limits };
    const mismatches: string[] = [];
    const answers = new Set<string>();
    let released = 0;
    for (let i = 0; i < 300; i++) {
      const r = {
        ...(pick(4) > 0 ? { ip: `ip-${pick(12)}` } : {}),
        ...(pick(4) > 0 ? { device: `dv-${pick(20)}` } : {}),
        block: `+44740${pick(10)}`,
        number: `n-${pick(12)}`,
      };
      const want = model.expected(r);
      const request = {
        requestId: randomUUID(),
        block: r.block,
        numberKey: r.number,
        ...(r.ip ? { ipKey: r.ip } : {}),
        ...(r.device ? { deviceKey: r.device } : {}),
      };
      const answer = guard(workflowId, input, request);
      const got = await answer.then(
        () => 'granted',
        async () => String((await refusalOf(answer)).type),
      );
      answers.add(got);
      if (got !== want) mismatches.push(`send ${i}: ${JSON.stringify(r)} got ${got}, expected ${want}`);
      if (got !== 'granted') continue;
      // Half the grants are given back (their window refused the send), some of them twice: the
      // model forgets each once, then answers as the window did, for the cooldown it told (one
      // give-back in twelve) or once a number was given back too often.
      if (pick(2) === 0) {
        const { at } = await answer;
        const handle = stack.client.workflow.getHandle(workflowId);
        const early = pick(12) === 0;
        const refusal = early
          ? { type: 'premature_retry', message: 'cooldown', retryAfterSeconds: 3_600 }
          : { type: 'too_many_attempts', message: 'used' };
        const release = { ...request, at: at!, refusal };
        await handle.signal(releaseGuardSignal, release);
        if (pick(2) === 0) await handle.signal(releaseGuardSignal, release);
        released += 1;
        model.givenBack(r, refusal.type, { cooldown: early });
      } else {
        model.sent(r);
      }
    }
    expect(released).toBeGreaterThanOrEqual(20);
    expect(mismatches).toEqual([]);
    // Every guard had its say.
    expect([...answers].sort()).toEqual(everyGuardAnswer);
    const usage = await stack.client.workflow.getHandle(workflowId).query(guardUsageQuery);
    expect(usage.sendsUsed).toBe(model.granted.length);
  }, 60_000);

  /** The event count of each run of a workflow's continue-as-new chain, oldest first. */
  const runLengths = async (workflowId: string): Promise<number[]> => {
    const lengths: number[] = [];
    let runId: string | undefined = (await stack.client.workflow.getHandle(workflowId).describe()).runId;
    while (runId) {
      const history: temporal.api.history.v1.IHistory = await stack.client.workflow
        .getHandle(workflowId, runId)
        .fetchHistory();
      const events = history.events ?? [];
      lengths.unshift(events.length);
      runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
    }
    return lengths;
  };

  /** `total` sends' updates, 4 at a time, to a shard started as `start` starts it. */
  const grantMany = async (
    start: () => WithStartWorkflowOperation<typeof sendGuardWorkflow>,
    total: number,
  ) => {
    const limits = unbound();
    let next = 0;
    const inFlight = 4;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < total) {
          next += 1;
          await stack.client.workflow.executeUpdateWithStart(guardSendUpdate, {
            args: [
              {
                requestId: randomUUID(),
                block: `+4475${randomUUID().slice(0, 5)}`,
                numberKey: randomUUID(),
                limits,
              },
            ],
            startWorkflowOperation: start(),
          });
        }
      }),
    );
  };

  it('keeps its runs short to replay, and counts every send across them', async () => {
    const shard = { country: 'GB', shard: 0, workflowId: `guard-state-runs-${randomUUID()}` };
    // Started as a send starts it. A grant writes 3 to 5 events, fewer when the worker takes several
    // updates in one task, so sends go in batches until the chain has continued as new, and one
    // batch more counts across the new run.
    const batch = 50;
    const start = () => guardShardStart(stack.options.taskQueue, shard);
    let granted = 0;
    let lengths: number[] = [];
    let continuedBefore: boolean;
    do {
      // Read before the batch: once true, this batch is the one counted across the new run.
      continuedBefore = lengths.length >= 2;
      expect(granted).toBeLessThan(shardRunEvents * 2);
      await grantMany(start, batch);
      granted += batch;
      const usage = await stack.client.workflow.getHandle(shard.workflowId).query(guardUsageQuery);
      expect(usage.sendsUsed).toBe(granted);
      lengths = await runLengths(shard.workflowId);
    } while (!continuedBefore);
    expect(lengths.length).toBeGreaterThanOrEqual(2);
    // Every run but the running one ended soon after the limit (updates in flight finish first).
    for (const length of lengths.slice(0, -1)) {
      expect(length).toBeGreaterThanOrEqual(shardRunEvents);
      expect(length).toBeLessThan(shardRunEvents + 40);
    }

    // A run started before runs were kept short (no limit in its input) runs as it did: a worker
    // replays it as it was written.
    const older = `guard-state-older-${randomUUID()}`;
    await grantMany(
      () =>
        new WithStartWorkflowOperation(sendGuardWorkflow, {
          workflowId: older,
          taskQueue: stack.options.taskQueue,
          args: [{ country: 'GB', shard: 0 }],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      granted,
    );
    const olderLengths = await runLengths(older);
    expect(olderLengths).toHaveLength(1);
    expect(olderLengths[0]).toBeGreaterThan(shardRunEvents);
  }, 120_000);
});
