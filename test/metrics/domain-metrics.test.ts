/**
 * The domain metrics, counted from a real flow (service, worker, dev server, the sandbox posting
 * signed webhooks): windows opened and closed by outcome, channel and country, codes sent and their
 * delivery, checks, Prelude calls, send → delivered and send → verified times, webhook events and
 * their cost — and no label anywhere holds a phone number, a code or a target key.
 */
import { sharedWorkerMetrics } from '../../src/metrics';
import { eventually } from '../support/eventually';
import { startStack, uniquePhoneTarget, type TestStack } from '../support/stack';

/** The value of one sample of a Prometheus text page, 0 when absent. */
function sample(page: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  const line = page
    .split('\n')
    .find(
      (l) =>
        l.startsWith(`${name}{`) &&
        wanted.every((pair) => l.slice(name.length, l.lastIndexOf('}')).includes(pair)),
    );
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('domain metrics', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ withServer: true, sandboxEnv: { SANDBOX_DELIVERY_DELAY_MS: '50' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${stack.serverUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return (await response.json()) as Record<string, unknown>;
  };
  const worker = () => sharedWorkerMetrics().registry.metrics();
  const service = async () => (await fetch(`${stack.serverUrl}/metrics`)).text();

  it('counts a verified window by channel and country, from send to verification', async () => {
    const target = uniquePhoneTarget();
    const before = await worker();
    const opened = sample(before, 'prelude_temporal_windows_opened_total', { country: 'FR' });
    const verified = sample(before, 'prelude_temporal_windows_closed_total', {
      outcome: 'verified',
      channel: 'sms',
      country: 'FR',
    });

    const sent = await post('/verifications', { target });
    expect(sent.status).toBe('success');
    // The code is typed once the carrier's report is in, as a user would.
    await eventually(
      async () => {
        const response = await fetch(`${stack.serverUrl}/verifications/${String(sent.id)}`);
        const window = (await response.json()) as { attempts: { delivery_status?: string }[] };
        return window.attempts[0]?.delivery_status === 'delivered';
      },
      { description: 'the delivered report in the window', timeoutMs: 30_000, intervalMs: 200 },
    );
    await post('/verifications/check', { target, code: 'WRONG1' });
    await post('/verifications/check', { target, code: await stack.latestCode(target.value) });

    await eventually(
      async () =>
        sample(await worker(), 'prelude_temporal_windows_closed_total', {
          outcome: 'verified',
          channel: 'sms',
          country: 'FR',
        }) ===
        verified + 1,
      { description: 'the verified window counted', timeoutMs: 30_000, intervalMs: 200 },
    );
    const page = await worker();
    expect(sample(page, 'prelude_temporal_windows_opened_total', { country: 'FR' })).toBe(opened + 1);
    expect(
      sample(page, 'prelude_temporal_window_attempts_total', {
        trigger: 'initial',
        channel: 'sms',
        country: 'FR',
        delivery_status: 'delivered',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_checks_total', { answer: 'failure', country: 'FR' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_checks_total', { answer: 'success', country: 'FR' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_delivery_reports_total', { status: 'delivered', country: 'FR' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_send_to_delivered_seconds_count', { channel: 'sms', country: 'FR' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_send_to_verified_seconds_count', { channel: 'sms', country: 'FR' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_prelude_send_answers_total', { answer: 'success', country: 'FR' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_prelude_requests_total', {
        operation: 'createVerification',
        result: 'ok',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(page, 'prelude_temporal_prelude_requests_total', {
        operation: 'checkVerification',
        result: 'ok',
      }),
    ).toBeGreaterThanOrEqual(2);
    // Watch predict, made inside the send's one call (monitor), is counted as a call of its own.
    expect(
      sample(page, 'prelude_temporal_prelude_requests_total', { operation: 'predictTarget', result: 'ok' }),
    ).toBeGreaterThanOrEqual(1);

    const servicePage = await service();
    expect(
      sample(servicePage, 'prelude_temporal_webhook_events_total', {
        type: 'verify.delivery_status',
        result: 'applied',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(servicePage, 'prelude_temporal_prelude_cost_total', {
        event: 'verify.authentication',
        country: 'FR',
        currency: 'EUR',
      }),
    ).toBeGreaterThan(0);
    expect(
      sample(servicePage, 'prelude_temporal_http_requests_total', {
        method: 'POST',
        route: '/verifications/check',
        status: '200',
      }),
    ).toBeGreaterThanOrEqual(2);

    // Nothing that identifies anyone: not the number, not a code, not the window's key.
    const code = await stack.latestCode(target.value);
    const key = String(sent.id).slice('verification-'.length);
    for (const text of [page, servicePage]) {
      for (const secret of [target.value.slice(3), code, key]) expect(text).not.toContain(secret);
    }
  });

  it('counts a window that closes otherwise by its outcome', async () => {
    const target = uniquePhoneTarget();
    const before = await worker();
    const canceled = sample(before, 'prelude_temporal_windows_closed_total', {
      outcome: 'canceled',
      country: 'FR',
    });
    const sent = await post('/verifications', { target });
    expect(sent.status).toBe('success');
    const cancel = await fetch(`${stack.serverUrl}/verifications/${String(sent.id)}`, { method: 'DELETE' });
    expect(cancel.status).toBe(200);
    await eventually(
      async () =>
        sample(await worker(), 'prelude_temporal_windows_closed_total', {
          outcome: 'canceled',
          country: 'FR',
        }) ===
        canceled + 1,
      { description: 'the canceled window counted', timeoutMs: 30_000, intervalMs: 200 },
    );
  });
});
