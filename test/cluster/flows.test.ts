/**
 * The README's flows on a production-shaped cluster (tools/cluster), each across both HTTP services
 * as a load balancer would spread a backend's calls: send on one, check on the other; delivery
 * reports from the sandbox's signed webhooks; forgetting a target; the per-target limits.
 */
import type { Cluster } from '../../tools/cluster';
import { eventually } from '../support/eventually';
import { call, clusterForSuite, latestCode, phoneTarget } from './support';

describe('on a production-shaped cluster', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    // A window reopened while Prelude's verification is still open resends there; the sandbox, like
    // Prelude, refuses a resend within 30 s unless told otherwise (the limits test reopens at once).
    cluster = await clusterForSuite({ env: { SANDBOX_MIN_RETRY_DELAY_SECONDS: '0' } });
  }, 300_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('was set up by `prelude-temporal setup`, every setting it relies on on', () => {
    expect(cluster.setupOutput).toContain('namespace default: created');
    expect(cluster.setupOutput).toContain('search attribute PreludeOutcome (KEYWORD): registered');
    expect(cluster.setupOutput).toMatch(/frontend\.enableExecuteMultiOperation: on/);
    expect(cluster.setupOutput).toMatch(/system\.enableActivityEagerExecution: on/);
  });

  it('sends on one service and checks on the other, with the code from the sandbox inbox', async () => {
    const target = phoneTarget();
    const sent = await call(cluster, 0, 'POST', '/verifications', { target });
    expect(sent).toMatchObject({ status: 200, body: { status: 'success', attempts: 1 } });
    expect(sent.body.id).toMatch(/^verification-[0-9a-f]{32}$/);

    const wrong = await call(cluster, 1, 'POST', '/verifications/check', { target, code: '000000' });
    expect(wrong).toMatchObject({ status: 200, body: { status: 'failure', checks_left: 4 } });
    const right = await call(cluster, 1, 'POST', '/verifications/check', {
      target,
      code: await latestCode(cluster, target.value),
    });
    expect(right).toMatchObject({ status: 200, body: { status: 'success', id: sent.body.id } });

    const window = await call(cluster, 0, 'GET', `/verifications/${sent.body.id}`);
    expect(window).toMatchObject({ status: 200, body: { status: 'verified', checks_used: 2 } });
  });

  it('shows the delivery status the sandbox reports through its signed webhooks', async () => {
    const target = phoneTarget();
    const sent = await call(cluster, 1, 'POST', '/verifications', { target });
    expect(sent.body.status).toBe('success');
    const window = await eventually(
      async () => {
        const { body } = await call(cluster, 0, 'GET', `/verifications/${sent.body.id}`);
        return body.attempts?.[0]?.delivery_status === 'delivered' && body;
      },
      { description: 'the delivered report in the window', timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(window.attempts[0]).toMatchObject({ channel: 'sms', delivery_status: 'delivered' });
  });

  it('forgets a target: its window is gone and a check finds nothing', async () => {
    const target = phoneTarget();
    const sent = await call(cluster, 0, 'POST', '/verifications', { target });
    expect(sent.body.status).toBe('success');
    const forgotten = await call(cluster, 1, 'POST', '/verifications/forget', { target });
    expect(forgotten).toMatchObject({ status: 200, body: { status: 'forgotten' } });
    expect(forgotten.body.deleted).toBeGreaterThanOrEqual(1);
    expect((await call(cluster, 0, 'GET', `/verifications/${sent.body.id}`)).status).toBe(404);
    const check = await call(cluster, 1, 'POST', '/verifications/check', {
      target,
      code: await latestCode(cluster, target.value),
    });
    expect(check).toMatchObject({ status: 200, body: { status: 'expired_or_not_found' } });
  });

  it('refuses a sixth window for a target within the period, across both services', async () => {
    const target = phoneTarget();
    const answers: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const { body } = await call(cluster, i % 2, 'POST', '/verifications', { target });
      answers.push(body.status ?? body.code);
      if (body.id) await call(cluster, (i + 1) % 2, 'DELETE', `/verifications/${body.id}`);
    }
    expect(answers).toEqual(['success', 'success', 'success', 'success', 'success', 'target_rate_limited']);
    const limited = await call(cluster, 1, 'POST', '/verifications', { target });
    expect(limited).toMatchObject({ status: 429, body: { code: 'target_rate_limited' } });
    expect(limited.body.retry_after_seconds).toBeGreaterThan(80_000);
  });
});
