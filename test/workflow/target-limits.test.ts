/**
 * Per-target limits across windows (the SMS-pumping guard): kept durably by one entity workflow per
 * target, enforced before any Prelude call, surviving worker restarts, and kept small by
 * continue-as-new.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { Client, WithStartWorkflowOperation } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { activityEnvironmentNow } from '../support/activity-environment';
import { createLimitsActivities, type ReserveTargetSendInput } from '../../activities/limits';
import { createSendActivities, reservationFailed } from '../../activities/send';
import {
  cancelVerification,
  getVerification,
  startVerification,
  targetKey,
  VerificationError,
} from '../../src/client';
import { normalizeTarget } from '../../src/prelude';
import { targetLimitsWorkflow } from '../../workflows';
import {
  reserveSendUpdate,
  targetLimitsIdPrefix,
  targetUsageQuery,
  type TargetLimits,
} from '../../workflows/messages';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

async function creates(stack: TestStack, to: string): Promise<number> {
  const response = await fetch(
    `${stack.sandbox.url}/sandbox/calls?to=${encodeURIComponent(to)}&operation=verification.create`,
  );
  return ((await response.json()) as { calls: unknown[] }).calls.length;
}

describe('per-target limits across windows', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack();
    stack.options.limits = { maxWindows: 2, maxSends: 3, periodSeconds: 3_600 };
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('grants windows and sends up to the limits, then refuses with retry_after and no Prelude call', async () => {
    const target = uniquePhoneTarget();
    const first = await startVerification(stack.client, { target }, stack.options);
    expect(first.status).toBe('success');
    await cancelVerification(stack.client, target, stack.options);
    await startVerification(stack.client, { target }, stack.options);
    expect((await startVerification(stack.client, { target }, stack.options)).sendsUsed).toBe(2);
    const usage = (await getVerification(stack.client, target, stack.options)).targetUsage;
    expect(usage).toMatchObject({ windowsUsed: 2, windowsLeft: 0, sendsUsed: 3, sendsLeft: 0 });

    // A resend in the open window: over the sends.
    const resend = await startVerification(stack.client, { target }, stack.options).catch((e: unknown) => e);
    expect(resend).toBeInstanceOf(VerificationError);
    expect(resend).toMatchObject({ code: 'target_rate_limited', retryAfterSeconds: expect.any(Number) });
    expect((resend as VerificationError).retryAfterSeconds).toBeGreaterThan(3_500);

    // A new window, after a restart of the worker: over the windows, and Prelude never asked.
    await cancelVerification(stack.client, target, stack.options);
    await stack.restartWorker(stack.keyRing);
    const sentBefore = await creates(stack, target.value);
    const refused = await startVerification(stack.client, { target }, stack.options).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'target_rate_limited' });
    expect(await creates(stack, target.value)).toBe(sentBefore);
    expect((await getVerification(stack.client, target, stack.options)).outcome).toBe('rate_limited');
  });

  /** A fresh target's limits entity, and its reservations as the send activity asks them. */
  function freshEntity(limits: TargetLimits) {
    const key = targetKey(normalizeTarget(uniquePhoneTarget()), stack.options.idKey);
    const { reserveTargetSend, tellCodesSent, giveBackSend } = createLimitsActivities({
      client: stack.client,
    });
    const activity = activityEnvironmentNow(stack.taskQueue);
    return {
      handle: stack.client.workflow.getHandle(`${targetLimitsIdPrefix}${key}`),
      ask: (request: Omit<ReserveTargetSendInput, 'targetKey' | 'limits'>) =>
        activity.run(reserveTargetSend, { targetKey: key, limits, ...request }),
      tell: (reservationId: string, codes: number) =>
        activity.run(tellCodesSent, { targetKey: key, reservationId, codes }),
      giveBack: (reservationId: string, opensWindow: boolean, call: string, known: number[]) =>
        activity.run(giveBackSend, { targetKey: key, reservationId, opensWindow, asker: { call, known } }),
    };
  }

  it('gives back a send that sent nothing, once, unless an execution its window does not know of asked it', async () => {
    const { handle, ask, giveBack } = freshEntity({ maxWindows: 1, maxSends: 2, periodSeconds: 3_600 });
    const usage = () => handle.query(targetUsageQuery);
    // No entity yet: nothing was granted, so nothing went out.
    expect(await giveBack('run-1:1', true, 'send-a', [1])).toEqual({ nothingSent: true });
    // A first send asked once, its entity started asleep with it (no task run yet), given back.
    await ask({
      reservationId: 'run-0:1',
      opensWindow: true,
      asker: { call: 'send-0', execution: 0, known: [] },
    });
    expect(await giveBack('run-0:1', true, 'send-0', [0])).toEqual({ nothingSent: true });
    expect(await usage()).toMatchObject({ windowsUsed: 0, sendsUsed: 0 });
    // A first send asked by two attempts of one execution, both answered by Prelude with errors.
    const asker = (call: string, execution: number, known: number[] = []) => ({ call, execution, known });
    await ask({ reservationId: 'run-1:1', opensWindow: true, asker: asker('send-a', 1) });
    await ask({ reservationId: 'run-1:1', opensWindow: true, asker: asker('send-a', 2, [1]) });
    expect(await usage()).toMatchObject({ windowsUsed: 1, sendsUsed: 1 });
    expect(await giveBack('run-1:1', true, 'send-a', [1, 2])).toEqual({ nothingSent: true });
    expect(await usage()).toMatchObject({ windowsUsed: 0, sendsUsed: 0 });
    // Given back twice (the window's call retried): once.
    expect(await giveBack('run-1:1', true, 'send-a', [1, 2])).toEqual({ nothingSent: true });
    expect(await usage()).toMatchObject({ windowsUsed: 0, sendsUsed: 0 });
    // The user's next try (another call of the same send) is counted afresh: the window it opens is
    // the target's only one of the period.
    expect(
      await ask({ reservationId: 'run-1:1', opensWindow: true, asker: asker('send-b', 3) }),
    ).toMatchObject({
      granted: true,
      usage: { windowsUsed: 1, sendsUsed: 1 },
    });
    expect(
      await ask({ reservationId: 'run-2:1', opensWindow: true, asker: asker('send-c', 4) }),
    ).toMatchObject({
      granted: false,
    });
    // A resend that a crash cut short after its reservation (an execution the window never learnt
    // of, which may have sent a code), then run again and failed: it stays counted, writing nothing.
    await ask({ reservationId: 'run-1:2', opensWindow: false, asker: asker('send-d', 5) });
    await ask({ reservationId: 'run-1:2', opensWindow: false, asker: asker('send-d', 6) });
    const events = (await handle.describe()).historyLength;
    expect(await giveBack('run-1:2', false, 'send-d', [6])).toEqual({ nothingSent: false });
    expect((await handle.describe()).historyLength).toBe(events);
    expect(await usage()).toMatchObject({ windowsUsed: 1, sendsUsed: 2, sendsLeft: 0 });
    // A reservation the entity refused was never granted: nothing went out through it, and nothing
    // comes back.
    expect(await giveBack('run-2:1', true, 'send-c', [4])).toEqual({ nothingSent: true });
    expect(await usage()).toMatchObject({ windowsUsed: 1, sendsUsed: 2 });
  });

  it('counts every code a send sent when its window tells them, the most it was told', async () => {
    const { handle, ask, tell } = freshEntity({ maxWindows: 5, maxSends: 8, periodSeconds: 3_600 });
    const sendsUsed = async () => (await handle.query(targetUsageQuery)).sendsUsed;
    await ask({ reservationId: 'run-1:1', opensWindow: true });
    // Two answers of the first send were lost: Prelude sent three codes for the one reservation.
    await tell('run-1:1', 3);
    expect(await sendsUsed()).toBe(3);
    // Told again (the window's call retried), or less (a run of the window lost to a crash told
    // first what it knew): counted once, the most it was told.
    await tell('run-1:1', 3);
    await tell('run-1:1', 2);
    expect(await sendsUsed()).toBe(3);
    // A run that knew of fewer lost attempts told first, the next one more: the difference counts.
    await ask({ reservationId: 'run-1:2', opensWindow: false });
    await tell('run-1:2', 2);
    await tell('run-1:2', 3);
    expect(await sendsUsed()).toBe(6);
    // A send whose every attempt failed before its reservation was answered: the entity never saw
    // it, and now counts its one code, as its reservation would have.
    await tell('run-1:4', 1);
    expect(await handle.query(targetUsageQuery)).toMatchObject({ sendsUsed: 7, sendsLeft: 1 });
    // That reservation asked late is counted already; the next send takes the last place.
    expect(await ask({ reservationId: 'run-1:4', opensWindow: false })).toMatchObject({
      granted: true,
      usage: { sendsUsed: 7 },
    });
    expect(await ask({ reservationId: 'run-1:5', opensWindow: false })).toMatchObject({
      granted: true,
      usage: { sendsUsed: 8, sendsLeft: 0 },
    });
    expect(await ask({ reservationId: 'run-1:6', opensWindow: false })).toMatchObject({ granted: false });
  });

  it("counts a target's first send by starting its entity with it, once however often it is asked", async () => {
    const { handle, ask } = freshEntity({ maxWindows: 1, maxSends: 2, periodSeconds: 3_600 });
    const reserve = (reservationId: string, opensWindow: boolean) => ask({ reservationId, opensWindow });

    const first = await reserve('run-1:1', true);
    expect(first).toMatchObject({ granted: true, usage: { windowsUsed: 1, sendsUsed: 1, sendsLeft: 1 } });
    // No entity ran: it was started with the count in its input, asleep until the count leaves the
    // period. Its history is its start alone: no update waited on a worker, no task, no timer.
    const history = await handle.fetchHistory();
    expect(history.events?.map((e) => e.eventType)).toEqual([
      temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    ]);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    // The same reservation asked again (a retried attempt whose answer was lost): counted once.
    expect(await reserve('run-1:1', true)).toMatchObject({ granted: true, usage: { sendsUsed: 1 } });
    expect(await handle.query(targetUsageQuery)).toMatchObject({ windowsUsed: 1, sendsUsed: 1 });
    // The entity now runs: the next reservations are judged by it.
    expect(await reserve('run-1:2', false)).toMatchObject({ granted: true, usage: { sendsUsed: 2 } });
    expect(await reserve('run-2:1', true)).toMatchObject({ granted: false });
    expect(await handle.query(targetUsageQuery)).toMatchObject({ windowsUsed: 1, sendsUsed: 2 });
  });

  it('tells an attempt run again after a lost workflow task how many runs it does not know of asked', async () => {
    const { handle, ask } = freshEntity({ maxWindows: 5, maxSends: 5, periodSeconds: 3_600 });
    const reserve = (call: string, execution: number, known: number[] = []) =>
      ask({ reservationId: 'run-1:1', opensWindow: true, asker: { call, execution, known } });

    // A send's first attempt starts the entity; its workflow task is lost, and the attempt runs again.
    expect(await reserve('send-a', 1_000)).not.toHaveProperty('earlierExecutions');
    expect(await reserve('send-a', 4_000)).toMatchObject({
      granted: true,
      earlierExecutions: 1,
      usage: { sendsUsed: 1 },
    });
    // The same attempt asked again (the activity retried its call): the same answer.
    expect(await reserve('send-a', 4_000)).toMatchObject({ earlierExecutions: 1 });
    // The next attempt knows the one before it, not the lost run.
    expect(await reserve('send-a', 5_000, [4_000])).toMatchObject({ earlierExecutions: 1 });
    // An attempt whose task was lost, then run again: two runs it does not know of.
    await reserve('send-a', 6_000, [4_000, 5_000]);
    expect(await reserve('send-a', 7_000, [4_000, 5_000])).toMatchObject({ earlierExecutions: 2 });
    // Another send that takes the same reservation (the first counted nothing): none of its own.
    expect(await reserve('send-b', 12_000)).not.toHaveProperty('earlierExecutions');
    // Each send and window counted once, however many runs asked.
    expect(await handle.query(targetUsageQuery)).toMatchObject({ windowsUsed: 1, sendsUsed: 1 });
  });

  it('sends nothing when the limits cannot be asked, and says the attempt never reached Prelude', async () => {
    const target = normalizeTarget(uniquePhoneTarget());
    const key = targetKey(target, stack.options.idKey);
    // A namespace that does not exist: every call to the limits entity fails.
    const unreachable = new Client({
      connection: stack.client.connection,
      namespace: `missing-${randomUUID()}`,
    });
    const { reserveAndCreateVerification } = createSendActivities({
      prelude: stack.prelude,
      client: unreachable,
    });
    const activity = activityEnvironmentNow(stack.taskQueue);
    const failure = await activity
      .run(reserveAndCreateVerification, {
        reservation: {
          targetKey: key,
          reservationId: 'run-1:1',
          opensWindow: true,
          limits: stack.options.limits,
        },
        create: { target, correlationId: `window-${key}` },
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: reservationFailed, details: [{ notSent: true }] });
    expect(await creates(stack, target.value)).toBe(0);
  });

  it("names the send's earlier runs in the failure of a create Prelude then refused", async () => {
    const target = normalizeTarget(uniquePhoneTarget());
    const { reserveAndCreateVerification } = createSendActivities({
      prelude: stack.prelude,
      client: stack.client,
    });
    const activity = activityEnvironmentNow(stack.taskQueue);
    const attempt = (execution: number) =>
      activity.run(reserveAndCreateVerification, {
        reservation: {
          targetKey: targetKey(target, stack.options.idKey),
          reservationId: 'run-1:1',
          opensWindow: true,
          limits: stack.options.limits,
          asker: { call: 'send-a', execution, known: [] },
        },
        create: { target, correlationId: `window-${randomUUID()}` },
      });
    // A run whose workflow task was then lost: its code went out.
    await attempt(1_000);
    // Run again, Prelude answers 500: the failure is Prelude's, and names the lost run.
    await stack.configureSandbox({ failNextCalls: { 'verification.create': 1 } });
    const failure = await attempt(4_000).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({
      type: 'Prelude.server',
      nonRetryable: false,
      details: [{ status: 500, earlierExecutions: 1 }],
    });
    // Prelude applied only the lost run's create.
    expect(await creates(stack, target.value)).toBe(1);
  });

  it('keeps counting another target separately', async () => {
    const target = uniquePhoneTarget();
    expect((await startVerification(stack.client, { target }, stack.options)).status).toBe('success');
  });

  it('continues as new when Temporal suggests it, keeping its counts', async () => {
    const key = targetKey(normalizeTarget(uniquePhoneTarget()), stack.options.idKey);
    const workflowId = `${targetLimitsIdPrefix}${key}`;
    const limits = { maxWindows: 10_000, maxSends: 10_000, periodSeconds: 3_600 };
    const reserve = (reservationId: string) =>
      stack.client.workflow.executeUpdateWithStart(reserveSendUpdate, {
        args: [{ reservationId, opensWindow: false, limits }],
        updateId: reservationId,
        startWorkflowOperation: new WithStartWorkflowOperation(targetLimitsWorkflow, {
          workflowId,
          taskQueue: stack.taskQueue,
          args: [{ targetKey: key }],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      });
    // Grants until the entity has continued as new (the server suggests it at 4,096 events or
    // 1,800 updates by default), eight at a time.
    let granted = 0;
    const grant = async () => {
      await reserve(randomUUID());
      granted += 1;
    };
    await grant();
    const { runId: firstRunId } = await stack.client.workflow.getHandle(workflowId).describe();
    const continued = async () =>
      (await stack.client.workflow.getHandle(workflowId).describe()).runId !== firstRunId;
    while (!(await continued()) && granted < 3_000) await Promise.all(Array.from({ length: 8 }, grant));
    expect(await continued()).toBe(true);
    expect(await reserve(randomUUID())).toMatchObject({ sendsUsed: granted + 1 });
    const handle = stack.client.workflow.getHandle(workflowId);
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(started?.continuedExecutionRunId).toBeTruthy();
    expect(history.events!.length).toBeLessThan(4_096);
  });
});
