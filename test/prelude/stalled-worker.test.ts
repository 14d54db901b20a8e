/**
 * A worker that stalled makes no Prelude call for a task it held during the stall
 * (activities/stall-fence.ts): another worker may have run that task meanwhile. The stall here is
 * real: this process's event loop blocked, as a paused process's is. The calls go to a sandbox,
 * whose call log says whether Prelude was asked.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createVerifyActivities } from '../../activities/verify';
import { stalledType, stallMs, watchForStalls } from '../../activities/stall-fence';
import { preludeCallMetrics, WorkerMetrics } from '../../src/metrics';
import { startTestSandbox, type TestSandbox } from './support';

let sandbox: TestSandbox;
let verify: ReturnType<typeof createVerifyActivities>;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  verify = createVerifyActivities({ prelude: sandbox.client() });
  watchForStalls();
});
afterAll(() => sandbox.stop());

/** Blocks this process's event loop for `ms`, as a pause of the process would. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // Nothing else runs: no timer, no I/O.
  }
}

async function callsTo(phone: string): Promise<{ operation: string }[]> {
  const response = await fetch(`${sandbox.url}/sandbox/calls?to=${encodeURIComponent(phone)}`);
  return ((await response.json()) as { calls: { operation: string }[] }).calls;
}

/**
 * The environment of `activityType`, run as the window runs it (a create local, a check regular),
 * whose task Temporal dated `scheduledAt`, with the worker's Prelude call metrics.
 */
function activityScheduledAt(
  scheduledAt: number,
  activityType: 'createVerification' | 'checkVerification',
  metrics = new WorkerMetrics(),
): MockActivityEnvironment {
  return new MockActivityEnvironment(
    {
      isLocal: activityType === 'createVerification',
      activityType,
      scheduledTimestampMs: scheduledAt,
      currentAttemptScheduledTimestampMs: scheduledAt,
    },
    { interceptors: [preludeCallMetrics(metrics)] },
  );
}

/** The Prelude requests the worker's metrics counted, as `operation result count` lines. */
async function requestsCounted(metrics: WorkerMetrics): Promise<string[]> {
  const { values } = await metrics.preludeRequests.get();
  return values.map((v) => `${v.labels.operation} ${v.labels.result} ${v.value}`);
}

const target = (value: string) => ({ type: 'phone_number' as const, value });
const nextTick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('a worker that stalled', () => {
  it('does not send a code for a send its window asked before the stall, and does for one asked after', async () => {
    const phone = '+33612340001';
    const askedAt = Date.now();
    stall(stallMs + 300);
    // The local call's own scheduled time is after the stall, as a stalled worker schedules it when
    // it runs the task: the window's task time is what dates it.
    const metrics = new WorkerMetrics();
    const env = activityScheduledAt(Date.now(), 'createVerification', metrics);
    const refused = await env
      .run(verify.createVerification, { target: target(phone), correlationId: 'w-1', taskStartedAt: askedAt })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApplicationFailure);
    expect(refused).toMatchObject({ type: stalledType, nonRetryable: false, details: [{ notSent: true }] });
    expect(await callsTo(phone)).toEqual([]);
    // Nor is it counted as a call to Prelude that failed.
    expect(await requestsCounted(metrics)).toEqual([]);

    await nextTick();
    const fresh = await activityScheduledAt(Date.now(), 'createVerification', metrics).run(
      verify.createVerification,
      {
        target: target(phone),
        correlationId: 'w-1',
        taskStartedAt: Date.now(),
      },
    );
    expect(fresh).toMatchObject({ kind: 'sent' });
    expect((await callsTo(phone)).map((c) => c.operation)).toEqual(['verification.create']);
    expect(await requestsCounted(metrics)).toEqual(['createVerification ok 1']);
  });

  it('does not spend a check whose attempt Temporal scheduled before the stall', async () => {
    const phone = '+33612340002';
    await activityScheduledAt(Date.now(), 'createVerification').run(verify.createVerification, {
      target: target(phone),
      correlationId: 'w-2',
      taskStartedAt: Date.now(),
    });
    const scheduledAt = Date.now();
    stall(stallMs + 300);
    const refused = await activityScheduledAt(scheduledAt, 'checkVerification')
      .run(verify.checkVerification, { target: target(phone), code: '000000' })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ type: stalledType, details: [{ notSent: true }] });
    expect((await callsTo(phone)).map((c) => c.operation)).toEqual(['verification.create']);
  });

  it('is not a worker that only paused briefly', async () => {
    const phone = '+33612340003';
    await nextTick();
    const askedAt = Date.now();
    stall(stallMs / 3);
    const sent = await activityScheduledAt(Date.now(), 'createVerification').run(verify.createVerification, {
      target: target(phone),
      correlationId: 'w-3',
      taskStartedAt: askedAt,
    });
    expect(sent).toMatchObject({ kind: 'sent' });
    expect(await callsTo(phone)).toHaveLength(1);
  });
});
