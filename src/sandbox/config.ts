/**
 * The sandbox's configuration: the `SANDBOX_*` variables, read at start (temporal.config.ts composes
 * this section into the whole configuration). The live knobs among them take the same limits when
 * `PUT /sandbox/config` changes them (see settings.ts).
 */
import { z } from 'zod';
import {
  envSection,
  flag,
  fraction,
  list,
  nonEmpty,
  optionalText,
  pemOrPath,
  port,
  setting,
  wholeNumber,
} from '../env';

const phoneNumbers = list(z.array(z.string().min(1)));

/** The sandbox's settings that can change while it runs, by field. */
export const sandboxLiveSettings = {
  windowSeconds: setting('SANDBOX_WINDOW_SECONDS', wholeNumber(1, 86_400), 600),
  maxAttempts: setting('SANDBOX_MAX_ATTEMPTS', wholeNumber(1, 100), 5),
  minRetryDelaySeconds: setting('SANDBOX_MIN_RETRY_DELAY_SECONDS', wholeNumber(0, 3_600), 30),
  maxChecks: setting('SANDBOX_MAX_CHECKS', wholeNumber(1, 100), 5),
  codeSize: setting('SANDBOX_CODE_SIZE', wholeNumber(4, 8), 6),
  apiKey: setting('SANDBOX_API_KEY', optionalText(z.string().min(1))),
  latencyMs: setting('SANDBOX_LATENCY_MS', wholeNumber(0, 60_000), 0),
  // Real latency has a tail: a call slower than the client's timeout is still carried out, late,
  // possibly after the client's retry of it.
  processingMs: setting('SANDBOX_PROCESSING_MS', wholeNumber(0, 60_000), 0),
  errorRate: setting('SANDBOX_ERROR_RATE', fraction, 0),
  rateLimitRate: setting('SANDBOX_RATE_LIMIT_RATE', fraction, 0),
  undeliverableNumbers: setting('SANDBOX_UNDELIVERABLE_NUMBERS', phoneNumbers),
  suspiciousNumbers: setting('SANDBOX_SUSPICIOUS_NUMBERS', phoneNumbers),
  unsubscribedNumbers: setting('SANDBOX_UNSUBSCRIBED_NUMBERS', phoneNumbers),
  numberRateLimit: setting('SANDBOX_NUMBER_RATE_LIMIT', wholeNumber(0, 10_000), 0),
  numberRateLimitSeconds: setting('SANDBOX_NUMBER_RATE_LIMIT_SECONDS', wholeNumber(1, 86_400), 3_600),
  deliveryDelayMs: setting('SANDBOX_DELIVERY_DELAY_MS', wholeNumber(0, 60_000), 200),
  webhookRetries: setting('SANDBOX_WEBHOOK_RETRIES', wholeNumber(0, 30), 8),
  webhookRetryMinMs: setting('SANDBOX_WEBHOOK_RETRY_MIN_MS', wholeNumber(10, 3_600_000), 1_000),
  // Off, `GET /v2/verification/phone/history/{id}` answers 404 as for an account without access to
  // the History API, so the product's fallback to its own counts can be tested.
  historyApi: setting('SANDBOX_HISTORY_API', flag, true),
};

/** The `SANDBOX_*` variables: where the sandbox listens, its webhook signing key and its live settings. */
export const sandboxEnv = envSection({
  host: setting('SANDBOX_HOST', nonEmpty, '127.0.0.1'),
  port: setting('SANDBOX_PORT', port, 4010),
  webhookPrivateKey: setting('SANDBOX_WEBHOOK_PRIVATE_KEY', pemOrPath('private key')),
  ...sandboxLiveSettings,
});

/** The Prelude sandbox's listening address and lifecycle knobs (also settable at runtime). */
export type SandboxConfig = z.output<typeof sandboxEnv.schema>;
