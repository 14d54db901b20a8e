/**
 * Prelude's verification lifecycle, in memory: one window per target, attempts and checks counted
 * against it, the create-or-retry rule, block and allow lists, sandbox numbers, a per-number rate
 * limit. Every lookup is by target in a Map; windows expire lazily (and in a periodic sweep).
 *
 * Each phone verification id also has a History API record (`GET /v2/verification/phone/history/
 * {id}`): its create, attempts and judged checks, kept past the window (a success or the sweep
 * deletes the window, not the record) for an hour of sandbox time after the window's expiry.
 */
import { randomInt } from 'node:crypto';
import type { CheckVerificationRequest, CreateVerificationRequest, Target } from '../prelude';
import type { SandboxClock } from './clock';
import { newId } from './ids';
import type { Inbox } from './inbox';
import type { SandboxSettings } from './settings';
import type { WebhookDispatcher } from './webhooks';

/** An answer: HTTP status and body (errors carry a Prelude code). */
export type EngineAnswer =
  | { status: 200; body: Record<string, unknown> }
  | { status: 400 | 429; code: string; message: string; retryAfterSeconds?: number };

interface Attempt {
  id: string;
  channel: string;
  sentAt: number;
  /** Its event in the window's history record, whose delivery status the final report updates. */
  event?: HistoryAttempt;
}

/** An attempt as the History API shows it. */
interface HistoryAttempt {
  id: string;
  created_at: string;
  channel: string;
  cost: number;
  status: 'succeeded' | 'failed';
  trigger: 'initial' | 'auto_retry' | 'user_retry';
  delivery_status: string;
  delivery_events: { received_at: string; status: string }[];
}

/** One event of a record's lifecycle: its `type`, and the payload keyed by that type. */
type HistoryEvent =
  | { type: 'create'; create: { created_at: string; cost: number } }
  | { type: 'attempt'; attempt: HistoryAttempt }
  | { type: 'check'; check: { created_at: string; is_valid: boolean } };

/** The History API's record of one phone verification id. */
interface HistoryRecord {
  id: string;
  phone: string;
  createdAt: number;
  /** The window's expiry; for a refused create, its own time (no window was opened). */
  expiresAt: number;
  correlationId?: string;
  /** A refused create's status, for good; otherwise the status follows the events and the clock. */
  refused?: 'in_blocklist' | 'rate_limited';
  challenged: boolean;
  events: HistoryEvent[];
}

interface Window {
  id: string;
  target: Target;
  code: string;
  method: string;
  channels: string[];
  attempts: Attempt[];
  checks: number;
  openedAt: number;
  expiresAt: number;
  correlationId?: string;
  callbackUrl?: string;
  /** Phone windows only: Prelude's History API covers phone verifications. */
  history?: HistoryRecord;
}

const phoneChannels = ['sms', 'whatsapp'];

/** How long a record outlives its window's expiry, in sandbox time. */
const historyRetentionMs = 3_600_000;

/** What a code sent costs, in EUR, as the webhooks' `price` says (a sandbox number's are free). */
const sendCost = (sandboxed: boolean) => (sandboxed ? 0 : 0.009);

/** The lifecycle of Verify windows. */
export class VerifyEngine {
  readonly #windows = new Map<string, Window>();
  readonly sandboxNumbers = new Map<string, { attempt_code: string; created_at: string }>();
  readonly allowList = new Map<string, string>();
  readonly blockList = new Map<string, string>();
  readonly #createsByNumber = new Map<string, number[]>();
  /** History records by verification id, oldest first (a Map keeps insertion order). */
  readonly #history = new Map<string, HistoryRecord>();

  /**
   * `historyCapacity` bounds the history records kept, the oldest dropped first, so a long benchmark
   * cannot exhaust memory even within the hour each record is kept.
   */
  constructor(
    private readonly settings: () => SandboxSettings,
    private readonly inbox: Inbox,
    private readonly webhooks: WebhookDispatcher,
    private readonly clock: SandboxClock,
    private readonly historyCapacity = 100_000,
  ) {}

  /** Registers a sandbox number (`PUT …/phone-numbers/sandbox`). */
  addSandboxNumber(phone: string, attemptCode: string): void {
    this.sandboxNumbers.set(phone, { attempt_code: attemptCode, created_at: this.clock.iso() });
  }

  /** Adds a number to the allow or block list, keeping the time it was first listed. */
  listNumber(list: 'allow' | 'block', phone: string): void {
    const numbers = list === 'allow' ? this.allowList : this.blockList;
    if (!numbers.has(phone)) numbers.set(phone, this.clock.iso());
  }

  /** Number of windows held (open or not yet swept). */
  get size(): number {
    return this.#windows.size;
  }

  /** `POST /v2/verification`. */
  create(request: CreateVerificationRequest, now = this.clock.now()): EngineAnswer {
    const settings = this.settings();
    const { target } = request;
    const key = keyOf(target);
    const correlationId = request.metadata?.correlation_id;
    const metadata = correlationId ? { correlation_id: correlationId } : undefined;
    const options = request.options ?? {};

    if (this.blockList.has(target.value)) return this.#refuse(request, 'in_block_list', now);
    if (!this.allowList.has(target.value) && this.#overRateLimit(key, now))
      return this.#refuse(request, 'repeated_attempts', now);

    let window = this.#openWindow(key, now);
    if (window) {
      if (window.attempts.length >= settings.maxAttempts) {
        return tooMany(
          'too_many_attempts',
          'the maximum number of attempts for this verification is reached',
        );
      }
      const waitMs = window.attempts.at(-1)!.sentAt + settings.minRetryDelaySeconds * 1000 - now;
      if (waitMs > 0) {
        return {
          status: 429,
          code: 'premature_retry',
          message: 'a retry was sent before the minimum delay between retries',
          retryAfterSeconds: Math.ceil(waitMs / 1000),
        };
      }
      window.callbackUrl = options.callback_url ?? window.callbackUrl;
      this.#attempt(window, now, options, 'user_retry');
      return this.#answer(window, 'retry');
    }

    const sandboxCode = this.sandboxNumbers.get(target.value)?.attempt_code;
    const email = target.type === 'email_address';
    const challenged = options.force_challenge === true;
    const planned = email
      ? ['email']
      : options.channels?.length
        ? [...options.channels]
        : options.preferred_channel
          ? [options.preferred_channel, ...phoneChannels.filter((c) => c !== options.preferred_channel)]
          : [...phoneChannels];
    window = {
      id: newId('vrf'),
      target,
      // A sandbox number answers only to its registered code, whatever the request asks for.
      code: sandboxCode ?? options.custom_code ?? randomCode(options.code_size ?? settings.codeSize),
      method: email ? 'email' : options.method === 'voice' ? 'voice' : 'message',
      channels: challenged ? planned.filter((c) => c !== 'sms' && c !== 'voice') : planned,
      attempts: [],
      checks: 0,
      openedAt: now,
      expiresAt: now + settings.windowSeconds * 1000,
      correlationId,
      callbackUrl: options.callback_url,
    };
    if (!email) {
      window.history = this.#record({
        id: window.id,
        phone: target.value,
        createdAt: now,
        expiresAt: window.expiresAt,
        correlationId,
        challenged,
        events: [
          { type: 'create', create: { created_at: iso(now), cost: sendCost(sandboxCode !== undefined) } },
        ],
      });
    }
    this.#windows.set(key, window);
    this.webhooks.send(window.callbackUrl, 'verify.authentication', {
      verification_id: window.id,
      target,
      price: { amount: sandboxCode ? 0 : 0.009, currency: 'EUR' },
      time: new Date(now).toISOString(),
      metadata: metadata ?? {},
    });
    this.#attempt(window, now, options, 'initial');
    return this.#answer(window, challenged ? 'challenged' : 'success');
  }

  /** `POST /v2/verification/check`. */
  check(request: CheckVerificationRequest, now = this.clock.now()): EngineAnswer {
    const key = keyOf(request.target);
    const window = this.#openWindow(key, now);
    if (!window) return { status: 200, body: { status: 'expired_or_not_found' } };
    if (window.checks >= this.settings().maxChecks) {
      return tooMany('too_many_checks', 'the maximum number of checks for this verification is reached');
    }
    window.checks += 1;
    const valid = request.code === window.code;
    // Every check judged is in the history, whatever became of its answer (a dropped one included).
    window.history?.events.push({ type: 'check', check: { created_at: iso(now), is_valid: valid } });
    const metadata = window.correlationId ? { correlation_id: window.correlationId } : undefined;
    if (!valid) return { status: 200, body: { id: window.id, status: 'failure', metadata } };
    // A verified window is converted: the next create opens a new one.
    this.#windows.delete(key);
    return { status: 200, body: { id: window.id, status: 'success', metadata } };
  }

  /**
   * `GET /v2/verification/phone/history/{id}`: the record of a phone verification id (a refused
   * create's included), without `request_id`; undefined for an unknown id, an e-mail verification's
   * or one past its retention.
   */
  history(id: string, now = this.clock.now()): Record<string, unknown> | undefined {
    const record = this.#history.get(id);
    if (!record) return undefined;
    if (record.expiresAt + historyRetentionMs <= now) {
      this.#history.delete(id);
      return undefined;
    }
    return {
      id: record.id,
      created_at: iso(record.createdAt),
      expires_at: iso(record.expiresAt),
      phone_number: record.phone,
      status: this.#historyStatus(record, now),
      ...(record.correlationId ? { correlation_id: record.correlationId } : {}),
      // A copy: a later delivery report must not change an answer already given.
      lifecycle: { events: structuredClone(record.events) },
    };
  }

  /** Drops expired windows, history records past their retention and stale rate-limit entries. */
  sweep(now = this.clock.now()): void {
    for (const [key, window] of this.#windows) if (window.expiresAt <= now) this.#windows.delete(key);
    for (const [id, record] of this.#history) {
      if (record.expiresAt + historyRetentionMs <= now) this.#history.delete(id);
    }
    const span = this.settings().numberRateLimitSeconds * 1000;
    for (const [key, times] of this.#createsByNumber) {
      if ((times.at(-1) ?? 0) <= now - span) this.#createsByNumber.delete(key);
    }
  }

  /** Keeps a record, dropping the oldest past the capacity. */
  #record(record: HistoryRecord): HistoryRecord {
    this.#history.set(record.id, record);
    if (this.#history.size > this.historyCapacity) {
      const oldest = this.#history.keys().next().value;
      if (oldest !== undefined) this.#history.delete(oldest);
    }
    return record;
  }

  /**
   * A record's status, read from its events and the clock: converted after a valid check;
   * not_converted once the window expired, or its checks ran out (against the live `maxChecks`, as
   * the engine refuses them) with none valid; until then sent, or challenged.
   */
  #historyStatus(record: HistoryRecord, now: number): string {
    if (record.refused) return record.refused;
    let checks = 0;
    for (const event of record.events) {
      if (event.type !== 'check') continue;
      if (event.check.is_valid) return 'converted';
      checks += 1;
    }
    if (record.expiresAt <= now || checks >= this.settings().maxChecks) return 'not_converted';
    return record.challenged ? 'challenged' : 'sent';
  }

  /** A create refused as `blocked`: no window, but its id has a record (phone targets only). */
  #refuse(request: CreateVerificationRequest, reason: string, now: number): EngineAnswer {
    const correlationId = request.metadata?.correlation_id;
    const answer = blocked(reason, correlationId ? { correlation_id: correlationId } : undefined);
    if (request.target.type === 'phone_number') {
      this.#record({
        id: answer.body.id as string,
        phone: request.target.value,
        createdAt: now,
        expiresAt: now,
        correlationId,
        refused: reason === 'in_block_list' ? 'in_blocklist' : 'rate_limited',
        challenged: false,
        events: [{ type: 'create', create: { created_at: iso(now), cost: 0 } }],
      });
    }
    return answer;
  }

  #openWindow(key: string, now: number): Window | undefined {
    const window = this.#windows.get(key);
    if (window && window.expiresAt <= now) {
      this.#windows.delete(key);
      return undefined;
    }
    return window;
  }

  #overRateLimit(key: string, now: number): boolean {
    const { numberRateLimit, numberRateLimitSeconds } = this.settings();
    if (numberRateLimit === 0) return false;
    const since = now - numberRateLimitSeconds * 1000;
    const times = (this.#createsByNumber.get(key) ?? []).filter((t) => t > since);
    if (times.length >= numberRateLimit) {
      this.#createsByNumber.set(key, times);
      return true;
    }
    times.push(now);
    this.#createsByNumber.set(key, times);
    return false;
  }

  #attempt(
    window: Window,
    now: number,
    options: NonNullable<CreateVerificationRequest['options']>,
    trigger: 'initial' | 'user_retry',
  ): void {
    const channel =
      window.method === 'email'
        ? 'email'
        : options.method === 'voice' || window.method === 'voice'
          ? 'voice'
          : (options.preferred_channel ??
            window.channels[Math.min(window.attempts.length, window.channels.length - 1)] ??
            'sms');
    const attempt: Attempt = { id: newId('att'), channel, sentAt: now };
    window.attempts.push(attempt);
    const sandboxed = this.sandboxNumbers.has(window.target.value);
    if (window.history) {
      attempt.event = {
        id: attempt.id,
        created_at: iso(now),
        channel,
        cost: sendCost(sandboxed),
        status: 'succeeded',
        trigger,
        // `submitted` is a delivery event, not one of the attempt's delivery statuses.
        delivery_status: 'in_transit',
        delivery_events: [{ received_at: iso(now), status: 'submitted' }],
      };
      window.history.events.push({ type: 'attempt', attempt: attempt.event });
    }
    if (!sandboxed) {
      this.inbox.add({
        to: window.target.value,
        channel,
        code: window.code,
        body:
          channel === 'voice'
            ? `(voice call) Your verification code is ${window.code.split('').join(' ')}.`
            : `Your verification code is ${window.code}.`,
        verification_id: window.id,
      });
    }
    this.#reportDelivery(window, attempt, trigger, sandboxed);
  }

  /** Webhooks of an attempt: the attempt, then `submitted`, then delivered or undeliverable. */
  #reportDelivery(window: Window, attempt: Attempt, trigger: string, sandboxed: boolean): void {
    const settings = this.settings();
    const base = {
      verification_id: window.id,
      target: window.target,
      price: { amount: sandboxed ? 0 : 0.009, currency: 'EUR' },
      carrier_information: { mcc: '208', mnc: '10' },
      metadata: window.correlationId ? { correlation_id: window.correlationId } : {},
    };
    const status = (s: string) => ({
      ...base,
      id: newId('dls'),
      attempt_id: attempt.id,
      status: s,
      time: this.clock.iso(),
    });
    this.webhooks.send(window.callbackUrl, 'verify.attempt', {
      ...base,
      id: attempt.id,
      time: new Date(attempt.sentAt).toISOString(),
      delivery_status: 'submitted',
      channel: attempt.channel,
      trigger,
    });
    this.webhooks.send(window.callbackUrl, 'verify.delivery_status', status('submitted'));
    const final = settings.undeliverableNumbers.includes(window.target.value) ? 'undeliverable' : 'delivered';
    const timer = setTimeout(() => {
      if (attempt.event) {
        attempt.event.delivery_status = final;
        attempt.event.delivery_events.push({ received_at: this.clock.iso(), status: final });
      }
      this.webhooks.send(window.callbackUrl, 'verify.delivery_status', status(final));
    }, settings.deliveryDelayMs);
    timer.unref();
  }

  /** Answers echo the correlation ID of the request that opened the window, retries included. */
  #answer(window: Window, status: string): EngineAnswer {
    return {
      status: 200,
      body: {
        id: window.id,
        status,
        method: window.method,
        channels: window.channels,
        ...(window.correlationId ? { metadata: { correlation_id: window.correlationId } } : {}),
      },
    };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function keyOf(target: Target): string {
  return `${target.type}:${target.value}`;
}

function randomCode(size: number): string {
  return Array.from({ length: size }, () => String(randomInt(0, 10))).join('');
}

function blocked(reason: string, metadata?: { correlation_id: string }): EngineAnswer & { status: 200 } {
  return {
    status: 200,
    body: {
      id: newId('vrf'),
      status: 'blocked',
      method: 'message',
      reason,
      ...(metadata ? { metadata } : {}),
    },
  };
}

function tooMany(code: string, message: string): EngineAnswer {
  return { status: 429, code, message };
}
