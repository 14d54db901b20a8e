/**
 * Signed webhook delivery, as Prelude does it: a JSON envelope `{ id, type, payload, created_at }`,
 * `X-Webhook-Signature: rsassa-pss-sha256=<base64>` over the exact body bytes, and redelivery with
 * exponential backoff (same event ID, same bytes) until the receiver answers 200.
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import type { SandboxClock } from './clock';
import { newId } from './ids';
import type { SandboxSettings } from './settings';
import { loadPRetry } from '../p-retry';

/** One event's delivery record (`GET /sandbox/webhooks`). */
export interface DeliveryRecord {
  event_id: string;
  type: string;
  url: string;
  attempts: number;
  last_status: number | null;
  state: 'pending' | 'delivered' | 'failed';
}

/** The key pair webhooks are signed with: given as PEM, or made at start. */
export function signingKeys(privateKeyPem?: string): { privateKey: KeyObject; publicKeyPem: string } {
  const privateKey = privateKeyPem
    ? createPrivateKey(privateKeyPem)
    : generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicKeyPem };
}

/** Sends webhooks and keeps a log of them. */
export class WebhookDispatcher {
  readonly #stop = new AbortController();
  readonly #pending = new Set<Promise<void>>();
  readonly #log: DeliveryRecord[] = [];

  constructor(
    private readonly privateKey: KeyObject,
    private readonly settings: () => SandboxSettings,
    private readonly clock: SandboxClock,
  ) {}

  /** Signs a body as Prelude does. */
  signature(body: string): string {
    const signed = sign('sha256', Buffer.from(body), {
      key: this.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    return `rsassa-pss-sha256=${signed.toString('base64')}`;
  }

  /** Queues an event for delivery; returns at once. */
  send(url: string | undefined, type: string, payload: unknown): void {
    if (!url || this.#stop.signal.aborted) return;
    const event = { id: newId('evt'), type, payload, created_at: this.clock.iso() };
    const record: DeliveryRecord = {
      event_id: event.id,
      type,
      url,
      attempts: 0,
      last_status: null,
      state: 'pending',
    };
    this.#log.unshift(record);
    if (this.#log.length > 10_000) this.#log.pop();
    const delivery = this.#deliver(url, JSON.stringify(event), record).finally(() =>
      this.#pending.delete(delivery),
    );
    this.#pending.add(delivery);
  }

  /** Newest first. */
  log(): DeliveryRecord[] {
    return this.#log;
  }

  /** Cancels pending deliveries and their retries. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled([...this.#pending]);
  }

  async #deliver(url: string, body: string, record: DeliveryRecord): Promise<void> {
    const { default: pRetry, AbortError } = await loadPRetry();
    const signature = this.signature(body);
    const { webhookRetries, webhookRetryMinMs } = this.settings();
    try {
      await pRetry(
        async () => {
          if (this.#stop.signal.aborted) throw new AbortError('sandbox stopped');
          record.attempts += 1;
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-webhook-signature': signature },
            body,
            // Prelude waits 10 s for an answer.
            signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(10_000)]),
          });
          record.last_status = response.status;
          await response.arrayBuffer().catch(() => undefined);
          if (response.status !== 200) throw new Error(`receiver answered ${response.status}`);
        },
        {
          retries: webhookRetries,
          minTimeout: webhookRetryMinMs,
          factor: 2,
          maxTimeout: 12 * 3_600_000,
          randomize: false,
          signal: this.#stop.signal,
        },
      );
      record.state = 'delivered';
    } catch {
      record.state = 'failed';
    }
  }
}
