/**
 * The metrics' own rules, without Temporal: label values come from small known sets (a country, a
 * channel, a status — never a number), a closed window is counted once with its delivery and
 * verification times, a webhook event adds its price, the SDK's runtime is set up at most once, and the
 * worker's endpoint serves its registry.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  channelLabel,
  countryOf,
  installSdkMetrics,
  ServiceMetrics,
  startMetricsServer,
  WorkerMetrics,
} from '../../src/metrics';
import type { WebhookEvent } from '../../src/prelude';

const phone = (value: string) => ({ type: 'phone_number' as const, value });

describe('label values', () => {
  it('tell a country from a phone number, and nothing else', () => {
    expect(countryOf(phone('+33612345678'))).toBe('FR');
    expect(countryOf(phone('+14155552671'))).toBe('US');
    expect(countryOf(phone('+447400123456'))).toBe('GB');
    expect(countryOf({ type: 'email_address', value: 'ada@example.com' })).toBe('none');
    expect(countryOf(phone('not a number'))).toBe('unknown');
    expect(countryOf(undefined)).toBe('unknown');
  });

  it('keep channels to Prelude’s', () => {
    expect(['sms', 'whatsapp', 'voice', 'email'].map(channelLabel)).toEqual([
      'sms',
      'whatsapp',
      'voice',
      'email',
    ]);
    expect(channelLabel('+33612345678')).toBe('other');
    expect(channelLabel(undefined)).toBe('unknown');
  });
});

describe('worker metrics', () => {
  it('count a closed window once: outcome, every send, delivery and verification times', async () => {
    const metrics = new WorkerMetrics();
    metrics.windowClosed({
      target: phone('+33612345678'),
      outcome: 'verified',
      closedAt: '2030-01-01T00:00:40.000Z',
      attempts: [
        {
          number: 1,
          trigger: 'initial',
          channel: 'sms',
          sentAt: '2030-01-01T00:00:00.000Z',
          deliveryStatus: 'undeliverable',
          deliveryUpdatedAt: '2030-01-01T00:00:03.000Z',
        },
        {
          number: 2,
          trigger: 'fallback',
          channel: 'whatsapp',
          sentAt: '2030-01-01T00:00:10.000Z',
          deliveryStatus: 'delivered',
          deliveryUpdatedAt: '2030-01-01T00:00:12.500Z',
        },
      ],
    });
    const page = await metrics.registry.metrics();
    expect(page).toContain(
      'prelude_temporal_windows_closed_total{outcome="verified",channel="sms",country="FR"} 1',
    );
    expect(page).toContain(
      'prelude_temporal_window_attempts_total{trigger="fallback",channel="whatsapp",country="FR",delivery_status="delivered"} 1',
    );
    expect(page).toContain(
      'prelude_temporal_window_attempts_total{trigger="initial",channel="sms",country="FR",delivery_status="undeliverable"} 1',
    );
    expect(page).toContain(
      'prelude_temporal_send_to_delivered_seconds_sum{channel="whatsapp",country="FR"} 2.5',
    );
    expect(page).toContain('prelude_temporal_send_to_verified_seconds_sum{channel="sms",country="FR"} 40');
  });

  it('count a window that sent nothing under channel none, and unknown values as other', async () => {
    const metrics = new WorkerMetrics();
    metrics.windowClosed({ target: phone('+33612345678'), outcome: 'rate_limited', attempts: [] });
    metrics.checked(phone('+33612345678'), 'a_new_answer');
    metrics.preludeCall('createVerification', 'error', 0.2, 'something_new');
    const page = await metrics.registry.metrics();
    expect(page).toContain(
      'prelude_temporal_windows_closed_total{outcome="rate_limited",channel="none",country="FR"} 1',
    );
    expect(page).toContain('prelude_temporal_checks_total{answer="other",country="FR"} 1');
    expect(page).toContain(
      'prelude_temporal_prelude_errors_total{operation="createVerification",kind="other"} 1',
    );
  });
});

describe('service metrics', () => {
  let nextId = 0;
  const event = (payload: Record<string, unknown>, type = 'verify.attempt', id = `evt_${(nextId += 1)}`) =>
    ({ id, type, created_at: '2030-01-01T00:00:00Z', payload }) as unknown as WebhookEvent;

  it('add the price of each event taken, once, by event, channel, country and currency', async () => {
    const metrics = new ServiceMetrics();
    const target = phone('+33612345678');
    const first = event({ target, channel: 'sms', price: { amount: 0.25, currency: 'EUR' } });
    metrics.recordWebhook(first, 'applied');
    // Delivered again by Prelude: applied (and counted) again, priced once.
    metrics.recordWebhook(first, 'applied');
    metrics.recordWebhook(
      event({ target, channel: 'sms', price: { amount: '0.5', currency: 'EUR' } }),
      'applied',
    );
    metrics.recordWebhook(event({ target, price: { amount: 0, currency: 'EUR' } }), 'applied');
    // Taken, so priced, though no open window of ours was there for them.
    metrics.recordWebhook(
      event({ target, channel: 'sms', price: { amount: 0.5, currency: 'EUR' } }),
      'run_closed',
    );
    metrics.recordWebhook(
      event({ target, channel: 'sms', price: { amount: 0.5, currency: 'EUR' } }),
      'unknown_target',
    );
    // Counted, not priced: not taken (Prelude delivers it again).
    metrics.recordWebhook(
      event({ target, channel: 'sms', price: { amount: 0.5, currency: 'EUR' } }),
      'unavailable',
    );
    metrics.recordWebhook(undefined, 'invalid_signature');
    const page = await metrics.registry.metrics();
    expect(page).toContain(
      'prelude_temporal_prelude_cost_total{event="verify.attempt",channel="sms",country="FR",currency="EUR"} 1.75',
    );
    expect(page).toContain('prelude_temporal_webhook_events_total{type="verify.attempt",result="applied"} 4');
    expect(page).toContain(
      'prelude_temporal_webhook_events_total{type="verify.attempt",result="run_closed"} 1',
    );
    expect(page).toContain(
      'prelude_temporal_webhook_events_total{type="verify.attempt",result="unknown_target"} 1',
    );
    expect(page).toContain(
      'prelude_temporal_webhook_events_total{type="verify.attempt",result="unavailable"} 1',
    );
    expect(page).toContain(
      'prelude_temporal_webhook_events_total{type="unknown",result="invalid_signature"} 1',
    );
    expect(page).not.toContain('612345678');
  });
});

describe('the Temporal SDK’s metrics', () => {
  it('are set up at most once, and not at all in a process whose runtime is set up already', async () => {
    // The test setup installs a runtime (test/setup/quiet-runtime.ts), as an embedding application may.
    await expect(installSdkMetrics()).resolves.toBeUndefined();
    await expect(installSdkMetrics()).resolves.toBeUndefined();
  });
});

describe('the worker’s metrics endpoint', () => {
  it('serves its registry, and refuses to start on a port already taken', async () => {
    const metrics = new WorkerMetrics();
    metrics.windowOpened(phone('+33612345678'));
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: metrics.registry });
    try {
      const page = await (await fetch(server.url)).text();
      expect(page).toContain('prelude_temporal_windows_opened_total{country="FR"} 1');
      expect((await fetch(server.url, { method: 'HEAD' })).status).toBe(200);
      expect((await fetch(server.url, { method: 'POST' })).status).toBe(404);

      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const { port } = taken.address() as AddressInfo;
      await expect(
        startMetricsServer({ host: '127.0.0.1', port, registry: metrics.registry }),
      ).rejects.toThrow(/EADDRINUSE/);
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    } finally {
      await server.close();
    }
  });
});
