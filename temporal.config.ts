/**
 * The one place configuration is read: environment variables (and a `.env` file in the working
 * directory, which never overrides variables that are already set), validated with zod.
 *
 * Every other module receives the typed sections it needs as arguments, so tests can build their own
 * configuration without touching `process.env`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { config as loadDotenv } from 'dotenv';
import { z } from 'zod';
import { KeyRingError, parseKeyRing, type KeyRing } from './src/codec/key-ring';
import { sendWorstCaseMs } from './workflows/retry-policies';

/** Thrown when an environment variable has a bad value; the message names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}\n` +
        'See the configuration table in README.md.',
    );
  }
}

// Empty strings are treated as unset: `FOO=` in a .env file or a compose file means "no value".
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const fraction = z
  .string()
  .trim()
  .transform(Number)
  .pipe(z.number({ error: 'must be a number from 0 to 1' }).min(0).max(1));

const url = z.url({ error: 'must be an absolute http(s) URL', protocol: /^https?$/ });

const hostPort = z
  .string()
  .trim()
  .regex(/^[^\s:/]+(:\d{1,5})$|^\[[0-9a-fA-F:]+\](:\d{1,5})$/, 'must be host:port, e.g. 127.0.0.1:7233');

const commaList = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

/**
 * A PEM value given inline or as a path to a file holding it. Read here, so that the rest of the
 * code only ever sees key material, never paths.
 */
const pemOrPath = (what: string) =>
  optionalString.transform((value, ctx) => {
    if (value === undefined) return undefined;
    const inline = value.replace(/\\n/g, '\n');
    if (inline.startsWith('-----BEGIN')) return inline;
    const path = resolve(value);
    if (!existsSync(path)) {
      ctx.addIssue({
        code: 'custom',
        message: `is neither a PEM ${what} nor the path of a file holding one`,
      });
      return z.NEVER;
    }
    return readFileSync(path, 'utf8').trim();
  });

const temporalEnv = z
  .object({
    TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
    TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().trim().min(1).default('prelude-verify'),
    TEMPORAL_API_KEY: optionalString,
    TEMPORAL_TLS_CERT: pemOrPath('certificate'),
    TEMPORAL_TLS_KEY: pemOrPath('private key'),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.TEMPORAL_TLS_CERT) !== Boolean(env.TEMPORAL_TLS_KEY)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.TEMPORAL_TLS_CERT ? 'TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_CERT'],
        message: 'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mTLS client certificate and its key)',
      });
    }
  })
  .transform((env) => ({
    address: env.TEMPORAL_ADDRESS,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE,
    apiKey: env.TEMPORAL_API_KEY,
    tls:
      env.TEMPORAL_TLS_CERT && env.TEMPORAL_TLS_KEY
        ? { cert: env.TEMPORAL_TLS_CERT, key: env.TEMPORAL_TLS_KEY }
        : undefined,
  }));

/** How the connector reaches Temporal. */
export type TemporalConfig = z.infer<typeof temporalEnv>;

const preludeEnv = z
  .object({
    PRELUDE_API_KEY: optionalString,
    PRELUDE_BASE_URL: url.default('https://api.prelude.dev'),
    PRELUDE_TIMEOUT_MS: integer(100, 120_000).default(5_000),
    PRELUDE_CALLBACK_URL: url.optional(),
    PRELUDE_WEBHOOK_PUBLIC_KEY: pemOrPath('public key'),
  })
  .transform((env) => ({
    apiKey: env.PRELUDE_API_KEY,
    baseUrl: env.PRELUDE_BASE_URL.replace(/\/+$/, ''),
    timeoutMs: env.PRELUDE_TIMEOUT_MS,
    callbackUrl: env.PRELUDE_CALLBACK_URL,
    webhookPublicKey: env.PRELUDE_WEBHOOK_PUBLIC_KEY,
  }));

/** How the connector reaches Prelude (the real API or the sandbox) and checks its webhooks. */
export type PreludeConfig = z.infer<typeof preludeEnv>;

const sandboxEnv = z
  .object({
    SANDBOX_HOST: z.string().trim().min(1).default('127.0.0.1'),
    SANDBOX_PORT: integer(0, 65_535).default(4010),
    SANDBOX_WINDOW_SECONDS: integer(1, 86_400).default(600),
    SANDBOX_MAX_ATTEMPTS: integer(1, 100).default(5),
    SANDBOX_MIN_RETRY_DELAY_SECONDS: integer(0, 3_600).default(30),
    SANDBOX_MAX_CHECKS: integer(1, 100).default(5),
    SANDBOX_CODE_SIZE: integer(4, 8).default(6),
    SANDBOX_API_KEY: optionalString,
    SANDBOX_LATENCY_MS: integer(0, 60_000).default(0),
    SANDBOX_ERROR_RATE: fraction.default(0),
    SANDBOX_RATE_LIMIT_RATE: fraction.default(0),
    SANDBOX_WEBHOOK_PRIVATE_KEY: pemOrPath('private key'),
    SANDBOX_UNDELIVERABLE_NUMBERS: commaList,
    SANDBOX_SUSPICIOUS_NUMBERS: commaList,
    SANDBOX_UNSUBSCRIBED_NUMBERS: commaList,
    SANDBOX_NUMBER_RATE_LIMIT: integer(0, 10_000).default(0),
    SANDBOX_NUMBER_RATE_LIMIT_SECONDS: integer(1, 86_400).default(3_600),
    SANDBOX_DELIVERY_DELAY_MS: integer(0, 60_000).default(200),
    SANDBOX_WEBHOOK_RETRIES: integer(0, 30).default(8),
    SANDBOX_WEBHOOK_RETRY_MIN_MS: integer(10, 3_600_000).default(1_000),
  })
  .transform((env) => ({
    host: env.SANDBOX_HOST,
    port: env.SANDBOX_PORT,
    windowSeconds: env.SANDBOX_WINDOW_SECONDS,
    maxAttempts: env.SANDBOX_MAX_ATTEMPTS,
    minRetryDelaySeconds: env.SANDBOX_MIN_RETRY_DELAY_SECONDS,
    maxChecks: env.SANDBOX_MAX_CHECKS,
    codeSize: env.SANDBOX_CODE_SIZE,
    apiKey: env.SANDBOX_API_KEY,
    latencyMs: env.SANDBOX_LATENCY_MS,
    errorRate: env.SANDBOX_ERROR_RATE,
    rateLimitRate: env.SANDBOX_RATE_LIMIT_RATE,
    webhookPrivateKey: env.SANDBOX_WEBHOOK_PRIVATE_KEY,
    undeliverableNumbers: env.SANDBOX_UNDELIVERABLE_NUMBERS,
    suspiciousNumbers: env.SANDBOX_SUSPICIOUS_NUMBERS,
    unsubscribedNumbers: env.SANDBOX_UNSUBSCRIBED_NUMBERS,
    numberRateLimit: env.SANDBOX_NUMBER_RATE_LIMIT,
    numberRateLimitSeconds: env.SANDBOX_NUMBER_RATE_LIMIT_SECONDS,
    deliveryDelayMs: env.SANDBOX_DELIVERY_DELAY_MS,
    webhookRetries: env.SANDBOX_WEBHOOK_RETRIES,
    webhookRetryMinMs: env.SANDBOX_WEBHOOK_RETRY_MIN_MS,
  }));

/** The Prelude sandbox's listening address and lifecycle knobs (also settable at runtime). */
export type SandboxConfig = z.infer<typeof sandboxEnv>;

const verifyEnv = z
  .object({
    VERIFY_WINDOW_SECONDS: integer(1, 86_400).default(600),
    VERIFY_MAX_CHECKS: integer(1, 100).default(5),
    VERIFY_MAX_SENDS: integer(1, 100).default(5),
    VERIFY_RESEND_COOLDOWN_SECONDS: integer(0, 3_600).default(30),
    VERIFY_FRAUD_MODE: z
      .enum(['off', 'monitor', 'enforce'], { error: 'must be off, monitor or enforce' })
      .default('monitor'),
    VERIFY_WATCH_FEEDBACK: z
      .enum(['true', 'false'], { error: 'must be true or false' })
      .default('false')
      .transform((v) => v === 'true'),
    VERIFY_SUCCESS_TEMPLATE_ID: optionalString,
    VERIFY_FALLBACK_CHANNELS: commaList.pipe(
      z.array(
        z.enum(['sms', 'rcs', 'whatsapp', 'viber', 'zalo', 'telegram', 'voice'], {
          error: 'must list channels among sms, rcs, whatsapp, viber, zalo, telegram, voice',
        }),
      ),
    ),
    VERIFY_DELIVERY_TIMEOUT_SECONDS: integer(0, 3_600).default(0),
    VERIFY_CALL_TIMEOUT_MS: integer(1_000, 300_000).default(40_000),
    VERIFY_MAX_WINDOWS_PER_TARGET: integer(1, 10_000).default(5),
    VERIFY_MAX_SENDS_PER_TARGET: integer(1, 10_000).default(10),
    VERIFY_TARGET_PERIOD_SECONDS: integer(60, 31 * 86_400).default(86_400),
    VERIFY_ACTIVITY_MODE: z.enum(['local', 'remote'], { error: 'must be local or remote' }).default('local'),
  })
  .transform((env) => ({
    policy: {
      windowSeconds: env.VERIFY_WINDOW_SECONDS,
      maxChecks: env.VERIFY_MAX_CHECKS,
      maxSends: env.VERIFY_MAX_SENDS,
      resendCooldownSeconds: env.VERIFY_RESEND_COOLDOWN_SECONDS,
      fraudMode: env.VERIFY_FRAUD_MODE,
      watchFeedback: env.VERIFY_WATCH_FEEDBACK,
      successTemplateId: env.VERIFY_SUCCESS_TEMPLATE_ID,
      fallbackChannels: env.VERIFY_FALLBACK_CHANNELS,
      deliveryTimeoutSeconds: env.VERIFY_DELIVERY_TIMEOUT_SECONDS,
    },
    callTimeoutMs: env.VERIFY_CALL_TIMEOUT_MS,
    activityMode: env.VERIFY_ACTIVITY_MODE,
    targetLimits: {
      maxWindows: env.VERIFY_MAX_WINDOWS_PER_TARGET,
      maxSends: env.VERIFY_MAX_SENDS_PER_TARGET,
      periodSeconds: env.VERIFY_TARGET_PERIOD_SECONDS,
    },
  }));

/** Defaults of every verification window's policy and the helpers' deadline. */
export type VerifyConfig = z.infer<typeof verifyEnv>;

const notifyEnv = z
  .object({
    NOTIFY_DELIVERY_TIMEOUT_SECONDS: integer(1, 86_400).default(900),
  })
  .transform((env) => ({ deliveryTimeoutSeconds: env.NOTIFY_DELIVERY_TIMEOUT_SECONDS }));

/** How long a notification run waits for its message's final delivery status. */
export type NotifyConfig = z.infer<typeof notifyEnv>;

const serviceEnv = z
  .object({
    HOST: z.string().trim().min(1).default('127.0.0.1'),
    PORT: integer(0, 65_535).default(3000),
    SERVICE_API_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
    SERVICE_BODY_LIMIT_BYTES: integer(1_024, 10_485_760).default(65_536),
    SERVICE_ALLOW_OVERRIDES: commaList,
    SERVICE_CORS_ORIGINS: commaList.pipe(
      z.array(
        z
          .string()
          .regex(
            /^https?:\/\/[^/\s,]+$/,
            'must list origins such as https://app.example.com (scheme and host, no path)',
          ),
      ),
    ),
  })
  .transform((env) => ({
    host: env.HOST,
    port: env.PORT,
    apiToken: env.SERVICE_API_TOKEN,
    bodyLimitBytes: env.SERVICE_BODY_LIMIT_BYTES,
    allowOverrides: env.SERVICE_ALLOW_OVERRIDES,
    corsOrigins: env.SERVICE_CORS_ORIGINS,
  }));

/** The HTTP service's address, its bearer token, its request size limit and the browsers it serves. */
export type ServiceConfig = z.infer<typeof serviceEnv>;

const metricsEnv = z
  .object({
    METRICS_HOST: z.string().trim().min(1).default('127.0.0.1'),
    METRICS_PORT: integer(0, 65_535).default(9464),
    METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
  })
  .transform((env) => ({
    host: env.METRICS_HOST,
    port: env.METRICS_PORT,
    token: env.METRICS_TOKEN,
  }));

/**
 * Where the worker serves its Prometheus metrics (`0`: not served), and the bearer token both `/metrics`
 * endpoints (the worker's and the service's) require when it is set.
 */
export type MetricsConfig = z.infer<typeof metricsEnv>;

/** How to make each privacy key, for the error a production entry point gives without it. */
export const privacyKeyRecipes = {
  VERIFY_ID_KEY: `node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`,
  PAYLOAD_CODEC_KEYS: `node -e "console.log('k1:'+require('crypto').randomBytes(32).toString('base64'))"`,
  CODEC_API_TOKEN: `node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))"`,
} as const;

const privacyEnv = z
  .object({
    PRIVACY_MODE: z
      .enum(['encrypted', 'plaintext'], { error: 'must be encrypted or plaintext' })
      .default('encrypted'),
    VERIFY_ID_KEY: optionalString.pipe(
      z.string().min(16, 'must be at least 16 characters (it keys an HMAC)').optional(),
    ),
    PAYLOAD_CODEC_KEYS: optionalString.transform((spec, ctx) => {
      if (spec === undefined) return undefined;
      try {
        return parseKeyRing(spec);
      } catch (error) {
        if (!(error instanceof KeyRingError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
        return z.NEVER;
      }
    }),
    // Two tokens at once, so the codec credential can rotate without a gap.
    CODEC_API_TOKEN: commaList.pipe(
      z
        .array(z.string().min(16, 'each token must be at least 16 characters'))
        .max(2, 'at most two tokens (the current one and the one being rotated out)'),
    ),
    CODEC_CORS_ORIGINS: commaList.transform((origins) =>
      origins.length > 0 ? origins : ['http://127.0.0.1:8233', 'http://localhost:8233'],
    ),
  })
  .transform((env) => ({
    mode: env.PRIVACY_MODE,
    idKey: env.VERIFY_ID_KEY,
    keyRing: env.PAYLOAD_CODEC_KEYS,
    codecTokens: env.CODEC_API_TOKEN,
    corsOrigins: env.CODEC_CORS_ORIGINS,
  }));

/**
 * Personal data at rest: `encrypted` (the default) keys workflow IDs with an HMAC and encrypts every
 * payload; `plaintext` is the explicit opt-out. Also the codec endpoints' own credential.
 */
export type PrivacyConfig = z.infer<typeof privacyEnv>;

const fullEnv = z
  .object({
    temporal: temporalEnv,
    prelude: preludeEnv,
    sandbox: sandboxEnv,
    verify: verifyEnv,
    notify: notifyEnv,
    service: serviceEnv,
    metrics: metricsEnv,
    privacy: privacyEnv,
  })
  .superRefine((config, ctx) => {
    // A caller must get the send's real answer, not "no answer", even when every call times out.
    const worstMs = sendWorstCaseMs(config.prelude.timeoutMs + lifecycleAttemptMarginMs);
    if (config.verify.callTimeoutMs < worstMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['verify', 'VERIFY_CALL_TIMEOUT_MS'],
        message:
          `must be at least ${worstMs} ms, the longest a send can take with PRELUDE_TIMEOUT_MS=` +
          `${config.prelude.timeoutMs} (limits, predict and create, each with its retries); raise it or lower PRELUDE_TIMEOUT_MS`,
      });
    }
  });

/** The whole configuration, one typed section per component. */
export type Config = z.infer<typeof fullEnv>;

/** An attempt of a call a user waits on lasts the Prelude client's timeout plus this margin. */
export const lifecycleAttemptMarginMs = 1_000;

/**
 * Reads and validates the configuration.
 *
 * @param env the variables to read; defaults to `process.env` after loading `.env` (if present).
 * @throws ConfigError naming every variable with a bad value.
 */
export function loadConfig(env: NodeJS.ProcessEnv = loadProcessEnv()): Config {
  // Every section reads the same variables; each picks out its own.
  const sections = Object.fromEntries(Object.keys(fullEnv.shape).map((section) => [section, env]));
  const parsed = fullEnv.safeParse(sections);
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    parsed.error.issues.map((issue) => ({
      // path is [section, VARIABLE]; the variable's name is what a user can act on.
      variable: String(issue.path[1] ?? issue.path[0] ?? 'configuration'),
      message: issue.message,
    })),
  );
}

let dotenvLoaded = false;

/** `process.env`, with `.env` from the working directory merged in under the variables already set. */
export function loadProcessEnv(): NodeJS.ProcessEnv {
  if (!dotenvLoaded) {
    loadDotenv({ quiet: true });
    dotenvLoaded = true;
  }
  return process.env;
}

/** Every environment variable the configuration reads (the README's table and the compose file use these names). */
export function configVariables(): string[] {
  return Object.values(fullEnv.shape).flatMap((section) => Object.keys(section.in.shape));
}

/** The keys personal data is protected with, as the worker, the service and the helpers use them. */
export interface PrivacyKeys {
  /** HMAC key of target keys and workflow IDs; `null` only in plaintext mode (targets in clear). */
  idKey: string | null;
  /** Payload encryption keys; absent only in plaintext mode. */
  keyRing: KeyRing | undefined;
}

/**
 * The privacy keys of a configuration. In `encrypted` mode (the default) both keys are required: a
 * production entry point stops here rather than write personal data in clear.
 *
 * @throws ConfigError naming each missing variable and how to make it.
 */
export function privacyKeys(privacy: PrivacyConfig): PrivacyKeys {
  if (privacy.mode === 'plaintext') return { idKey: privacy.idKey ?? null, keyRing: privacy.keyRing };
  const missing = (['VERIFY_ID_KEY', 'PAYLOAD_CODEC_KEYS'] as const).filter((name) =>
    name === 'VERIFY_ID_KEY' ? !privacy.idKey : !privacy.keyRing,
  );
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map((variable) => ({
        variable,
        message:
          `required: phone numbers, e-mail addresses and codes are protected by default. Make one with\n` +
          `      ${privacyKeyRecipes[variable]}\n` +
          `    (npm start makes and keeps its own; PRIVACY_MODE=plaintext opts out, storing them in clear)`,
      })),
    );
  }
  return { idKey: privacy.idKey!, keyRing: privacy.keyRing };
}
