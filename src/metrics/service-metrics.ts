/**
 * The HTTP service's metrics: every request by route and status, and what only the service sees —
 * Prelude's webhook events as they arrive, with the price each one carries.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { ingestDispositions, type IngestDisposition } from '../ingest';
import type { WebhookEvent } from '../prelude';
import { channelLabel, countryOf, currencyLabel, oneOf, type LabelledTarget } from './labels';

/** Every metric name starts with this. */
export const metricPrefix = 'prelude_temporal_';

const methods: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

const webhookTypes: ReadonlySet<string> = new Set([
  'verify.authentication',
  'verify.attempt',
  'verify.delivery_status',
  'transactional.message.created',
  'transactional.message.submitted',
  'transactional.message.pending_delivery',
  'transactional.message.delivered',
  'transactional.message.failed',
  'transactional.message.unknown',
]);

/** What the webhook route did with an event: signalled it (or found no open run for it), or refused it. */
export type WebhookResult =
  IngestDisposition | 'empty_body' | 'invalid_signature' | 'invalid_json' | 'invalid_event' | 'unavailable';

/** Event IDs remembered so that a redelivered event's price is counted once: minutes of traffic. */
const pricedEventsKept = 10_000;

/** Options of {@link ServiceMetrics}. */
export interface ServiceMetricsOptions {
  /** Also Node's own process metrics (CPU, memory, event loop lag): on for a deployed service. */
  processMetrics?: boolean;
}

/** The service's metrics, in a registry of their own (several services may share a process in tests). */
export class ServiceMetrics {
  readonly registry = new Registry();
  /** Event IDs whose price is counted, oldest first. */
  readonly #priced = new Set<string>();

  readonly httpRequests = new Counter({
    name: `${metricPrefix}http_requests_total`,
    help: 'HTTP requests answered, by method, route (as declared, never the URL as sent) and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: `${metricPrefix}http_request_duration_seconds`,
    help: 'Time to answer an HTTP request, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly webhookEvents = new Counter({
    name: `${metricPrefix}webhook_events_total`,
    help: "Prelude's webhook events, by type and what became of them (accepted, duplicate, or why refused)",
    labelNames: ['type', 'result'] as const,
    registers: [this.registry],
  });

  readonly cost = new Counter({
    name: `${metricPrefix}prelude_cost_total`,
    help: "Sum of the prices Prelude's webhook events carry, by event type, channel, country and currency",
    labelNames: ['event', 'channel', 'country', 'currency'] as const,
    registers: [this.registry],
  });

  readonly sendsRefused = new Counter({
    name: `${metricPrefix}sends_refused_total`,
    help: 'Sends a guard refused before anything was written or sent, by reason (the error code) and country',
    labelNames: ['reason', 'country'] as const,
    registers: [this.registry],
  });

  readonly sendsFlagged = new Counter({
    name: `${metricPrefix}sends_flagged_total`,
    help: 'Sends a guard let through in monitor mode but would have refused, by reason and country',
    labelNames: ['reason', 'country'] as const,
    registers: [this.registry],
  });

  constructor(options: ServiceMetricsOptions = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts an answered request; `route` is the route's declared URL, or undefined when none matched. */
  recordRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    const labels = { method: oneOf(methods, method), route: route ?? 'unmatched', status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  /**
   * Counts a webhook event; one taken (whatever became of it: Prelude charged for it all the same)
   * adds its price to the cost, once per event ID: Prelude delivers an event again until it hears
   * 200, and each delivery is taken (the window ignores the repeats). The IDs are remembered per
   * process, the newest {@link pricedEventsKept}.
   */
  recordWebhook(event: WebhookEvent | undefined, result: WebhookResult): void {
    const type = event ? oneOf(webhookTypes, event.type) : 'unknown';
    this.webhookEvents.inc({ type, result });
    const taken = (ingestDispositions as readonly string[]).includes(result);
    if (!taken || !event || this.#priced.has(event.id)) return;
    this.#priced.add(event.id);
    if (this.#priced.size > pricedEventsKept) this.#priced.delete(this.#priced.values().next().value!);
    const payload = event.payload as {
      price?: { amount?: unknown; currency?: unknown };
      target?: LabelledTarget;
      channel?: unknown;
    };
    const amount = Number(payload.price?.amount);
    if (!payload.price || !Number.isFinite(amount) || amount <= 0) return;
    const target =
      typeof payload.target?.type === 'string' && typeof payload.target.value === 'string'
        ? payload.target
        : undefined;
    this.cost.inc(
      {
        event: type,
        channel: channelLabel(payload.channel),
        country: countryOf(target),
        currency: currencyLabel(payload.price.currency),
      },
      amount,
    );
  }
}
