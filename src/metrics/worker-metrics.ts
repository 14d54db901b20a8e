/**
 * The worker's domain metrics: verification windows as they open, take checks and delivery reports
 * and close, and every call to Prelude. Counted from the worker because every window runs there,
 * whether it was opened over HTTP or by backend code with the client helpers.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { outcomes, type VerificationState } from '../../workflows/messages';
import { channelLabel, countryOf, deliveryStatuses, oneOf, type LabelledTarget } from './labels';
import { metricPrefix } from './service-metrics';

const windowOutcomes: ReadonlySet<string> = new Set(outcomes);

const triggers: ReadonlySet<string> = new Set(['initial', 'user_retry', 'fallback', 'auto_retry']);

/** A check's answer, or why the window refused it. */
const checkAnswers: ReadonlySet<string> = new Set([
  'success',
  'failure',
  'expired_or_not_found',
  'invalid_code',
  'too_many_checks',
  'window_closed',
  'idempotency_key_reused',
]);

/** Prelude's answers to a send, and its lifecycle refusals of one. */
const sendAnswers: ReadonlySet<string> = new Set([
  'success',
  'retry',
  'challenged',
  'blocked',
  'shadow_blocked',
  'premature_retry',
  'too_many_attempts',
]);

/** `PreludeError` kinds, plus what else can end a call. */
const errorKinds: ReadonlySet<string> = new Set([
  'network',
  'timeout',
  'server',
  'rate_limited',
  'lifecycle',
  'invalid_request',
  'auth',
  'invalid_response',
  'canceled',
  'unexpected',
]);

/** What a closed window tells the metrics: its final state, less everything that identifies anyone. */
export type ClosedWindow = Pick<VerificationState, 'target' | 'outcome' | 'attempts' | 'closedAt'>;

/** Options of {@link WorkerMetrics}. */
export interface WorkerMetricsOptions {
  /** Also Node's own process metrics (CPU, memory, event loop lag): on for a deployed worker. */
  processMetrics?: boolean;
}

/** The worker's domain metrics, in a registry of their own. */
export class WorkerMetrics {
  readonly registry = new Registry();

  readonly windowsOpened = new Counter({
    name: `${metricPrefix}windows_opened_total`,
    help: 'Verification windows opened, by country of the target',
    labelNames: ['country'] as const,
    registers: [this.registry],
  });

  readonly windowsClosed = new Counter({
    name: `${metricPrefix}windows_closed_total`,
    help: "Verification windows closed, by outcome, the channel of the window's first send, and country",
    labelNames: ['outcome', 'channel', 'country'] as const,
    registers: [this.registry],
  });

  readonly attempts = new Counter({
    name: `${metricPrefix}window_attempts_total`,
    help:
      'Codes sent in closed windows, by trigger (initial, user_retry: a resend, fallback, auto_retry), ' +
      'channel, country and final delivery status (none: no report came)',
    labelNames: ['trigger', 'channel', 'country', 'delivery_status'] as const,
    registers: [this.registry],
  });

  readonly checks = new Counter({
    name: `${metricPrefix}checks_total`,
    help: "Codes checked in open windows, by answer (or the window's reason to refuse) and country",
    labelNames: ['answer', 'country'] as const,
    registers: [this.registry],
  });

  readonly deliveryReports = new Counter({
    name: `${metricPrefix}delivery_reports_total`,
    help: "Delivery reports (from Prelude's webhooks) applied to open windows, by status and country",
    labelNames: ['status', 'country'] as const,
    registers: [this.registry],
  });

  readonly sendToDelivered = new Histogram({
    name: `${metricPrefix}send_to_delivered_seconds`,
    help: 'From a send to its delivered report, for attempts of closed windows, by channel and country',
    labelNames: ['channel', 'country'] as const,
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });

  readonly sendToVerified = new Histogram({
    name: `${metricPrefix}send_to_verified_seconds`,
    help: "From a window's first send to its verification, by channel of that send and country",
    labelNames: ['channel', 'country'] as const,
    buckets: [5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800],
    registers: [this.registry],
  });

  readonly preludeRequests = new Counter({
    name: `${metricPrefix}prelude_requests_total`,
    help: 'Calls to Prelude (activity executions, retries included), by operation and result: ok, refused, error',
    labelNames: ['operation', 'result'] as const,
    registers: [this.registry],
  });

  readonly preludeDuration = new Histogram({
    name: `${metricPrefix}prelude_request_duration_seconds`,
    help: 'Time a call to Prelude took, by operation and result',
    labelNames: ['operation', 'result'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });

  readonly preludeErrors = new Counter({
    name: `${metricPrefix}prelude_errors_total`,
    help: 'Calls to Prelude that failed, by operation and kind (network, timeout, server, rate_limited, auth, …)',
    labelNames: ['operation', 'kind'] as const,
    registers: [this.registry],
  });

  readonly sendAnswers = new Counter({
    name: `${metricPrefix}prelude_send_answers_total`,
    help: "Prelude's answers to sends (success: a new window, retry: a resend or fallback, blocked, …), by country",
    labelNames: ['answer', 'country'] as const,
    registers: [this.registry],
  });

  constructor(options: WorkerMetricsOptions = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** A window started. */
  windowOpened(target: LabelledTarget | undefined): void {
    this.windowsOpened.inc({ country: countryOf(target) });
  }

  /** A check reached an open window and got `answer` (or was refused for that reason). */
  checked(target: LabelledTarget | undefined, answer: string): void {
    this.checks.inc({ answer: oneOf(checkAnswers, answer), country: countryOf(target) });
  }

  /** A delivery report reached an open window. */
  deliveryReported(target: LabelledTarget | undefined, status: string): void {
    this.deliveryReports.inc({ status: oneOf(deliveryStatuses, status), country: countryOf(target) });
  }

  /** A window closed: its outcome, every code it sent, and how long delivery and verification took. */
  windowClosed(window: ClosedWindow): void {
    const country = countryOf(window.target);
    const first = window.attempts[0];
    const windowChannel = first ? channelLabel(first.channel) : 'none';
    this.windowsClosed.inc({
      outcome: oneOf(windowOutcomes, window.outcome),
      channel: windowChannel,
      country,
    });
    for (const attempt of window.attempts) {
      const channel = channelLabel(attempt.channel);
      this.attempts.inc({
        trigger: oneOf(triggers, attempt.trigger),
        channel,
        country,
        delivery_status:
          attempt.deliveryStatus === undefined ? 'none' : oneOf(deliveryStatuses, attempt.deliveryStatus),
      });
      if (attempt.deliveryStatus === 'delivered') {
        const seconds = secondsBetween(attempt.sentAt, attempt.deliveryUpdatedAt);
        if (seconds !== undefined) this.sendToDelivered.observe({ channel, country }, seconds);
      }
    }
    if (window.outcome === 'verified' && first) {
      const seconds = secondsBetween(first.sentAt, window.closedAt);
      if (seconds !== undefined) this.sendToVerified.observe({ channel: windowChannel, country }, seconds);
    }
  }

  /** A call to Prelude ended: answered (`ok`), refused by Prelude's lifecycle rules, or failed. */
  preludeCall(
    operation: string,
    result: 'ok' | 'refused' | 'error',
    seconds: number,
    errorKind?: string,
  ): void {
    this.preludeRequests.inc({ operation, result });
    this.preludeDuration.observe({ operation, result }, seconds);
    if (result === 'error') this.preludeErrors.inc({ operation, kind: oneOf(errorKinds, errorKind) });
  }

  /** Prelude answered a send (or refused it with a lifecycle code). */
  sendAnswered(target: LabelledTarget | undefined, answer: string): void {
    this.sendAnswers.inc({ answer: oneOf(sendAnswers, answer), country: countryOf(target) });
  }
}

/** Seconds from one ISO time to a later one; undefined when either is missing or unreadable. */
function secondsBetween(from: string | undefined, to: string | undefined): number | undefined {
  const start = Date.parse(from ?? '');
  const end = Date.parse(to ?? '');
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) return undefined;
  return (end - start) / 1000;
}

let shared: WorkerMetrics | undefined;

/** The metrics of the workers this process creates without metrics of their own. */
export function sharedWorkerMetrics(): WorkerMetrics {
  shared ??= new WorkerMetrics();
  return shared;
}
