/**
 * The one place configuration is read: environment variables (and a `.env` file in the working
 * directory, which never overrides variables that are already set), validated with zod.
 *
 * Each component's section is a table of settings (see src/env.ts) that names each variable once,
 * with its limits and default; the sandbox's own lives beside it (src/sandbox/config.ts). The
 * variables the configuration reads (`configVariables`) come from the same tables.
 *
 * Every other module receives the typed sections it needs as arguments, so tests can build their own
 * configuration without touching `process.env`.
 */
import { config as loadDotenv } from 'dotenv';
import { z } from 'zod';
import { KeyRingError, parseKeyRing, type KeyRing } from './src/codec/key-ring';
import {
  commaList,
  envSection,
  flag,
  hostPort,
  list,
  nonEmpty,
  oneOf,
  optionalText,
  optionalWholeNumber,
  parsed,
  pemOrPath,
  port,
  read,
  schemasOf,
  setting,
  url,
  wholeNumber,
  type EnvSection,
} from './src/env';
import { sendChannels } from './src/prelude/schemas';
import { sandboxEnv } from './src/sandbox/config';
import { callWorstCaseMs } from './workflows/retry-policies';

export type { SandboxConfig } from './src/sandbox/config';

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

/** A bearer token: long enough not to be guessed. */
const token = optionalText(z.string().min(16, 'must be at least 16 characters'));

// ---- Temporal ---------------------------------------------------------------------------------

const tlsCert = setting('TEMPORAL_TLS_CERT', pemOrPath('certificate'));
const tlsKey = setting('TEMPORAL_TLS_KEY', pemOrPath('private key'));

const temporalEnv = envSection(
  {
    address: setting('TEMPORAL_ADDRESS', hostPort, '127.0.0.1:7233'),
    namespace: setting('TEMPORAL_NAMESPACE', nonEmpty, 'default'),
    taskQueue: setting('TEMPORAL_TASK_QUEUE', nonEmpty, 'prelude-verify'),
    apiKey: setting('TEMPORAL_API_KEY', optionalText(z.string())),
    tls: { cert: tlsCert, key: tlsKey },
  },
  ({ tls, ...temporal }, ctx) => {
    if (Boolean(tls.cert) !== Boolean(tls.key)) {
      ctx.addIssue({
        code: 'custom',
        path: [(tls.cert ? tlsKey : tlsCert).variable],
        message: `${tlsCert.variable} and ${tlsKey.variable} go together (mTLS client certificate and its key)`,
      });
    }
    return { ...temporal, tls: tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : undefined };
  },
);

/** How the connector reaches Temporal. */
export type TemporalConfig = z.output<typeof temporalEnv.schema>;

// ---- Prelude ----------------------------------------------------------------------------------

const preludeTimeout = setting('PRELUDE_TIMEOUT_MS', wholeNumber(100, 120_000), 5_000);

const preludeEnv = envSection({
  apiKey: setting('PRELUDE_API_KEY', optionalText(z.string())),
  baseUrl: setting(
    'PRELUDE_BASE_URL',
    read(url.text.transform((base) => base.replace(/\/+$/, ''))),
    'https://api.prelude.dev',
  ),
  timeoutMs: preludeTimeout,
  // The minimum delay between retries of a verification, as set in Prelude's dashboard (it publishes
  // no default). Unset: taken to be longer than the pauses between a call's attempts.
  resendDelaySeconds: setting('PRELUDE_RESEND_DELAY_SECONDS', optionalWholeNumber(0, 86_400)),
  callbackUrl: setting('PRELUDE_CALLBACK_URL', read(url.text.optional())),
  webhookPublicKey: setting('PRELUDE_WEBHOOK_PUBLIC_KEY', pemOrPath('public key')),
});

/** How the connector reaches Prelude (the real API or the sandbox) and checks its webhooks. */
export type PreludeConfig = z.output<typeof preludeEnv.schema>;

// ---- Verify -----------------------------------------------------------------------------------

/**
 * A verification window's policy, by field: the configured defaults, and the limits of the
 * per-window overrides a caller may give (src/client/schemas.ts).
 */
export const verifyPolicySettings = {
  windowSeconds: setting('VERIFY_WINDOW_SECONDS', wholeNumber(1, 86_400), 600),
  maxChecks: setting('VERIFY_MAX_CHECKS', wholeNumber(1, 100), 5),
  maxSends: setting('VERIFY_MAX_SENDS', wholeNumber(1, 100), 5),
  resendCooldownSeconds: setting('VERIFY_RESEND_COOLDOWN_SECONDS', wholeNumber(0, 3_600), 30),
  fraudMode: setting('VERIFY_FRAUD_MODE', oneOf(['off', 'monitor', 'enforce']), 'monitor'),
  watchFeedback: setting('VERIFY_WATCH_FEEDBACK', flag, false),
  successTemplateId: setting('VERIFY_SUCCESS_TEMPLATE_ID', optionalText(z.string().min(1).max(200))),
  fallbackChannels: setting(
    'VERIFY_FALLBACK_CHANNELS',
    list(
      z
        .array(z.enum(sendChannels, { error: `must list channels among ${sendChannels.join(', ')}` }))
        .max(sendChannels.length),
    ),
  ),
  deliveryTimeoutSeconds: setting('VERIFY_DELIVERY_TIMEOUT_SECONDS', wholeNumber(0, 3_600), 0),
};

const callTimeout = setting('VERIFY_CALL_TIMEOUT_MS', wholeNumber(1_000, 300_000), 40_000);

const verifyEnv = envSection({
  policy: verifyPolicySettings,
  callTimeoutMs: callTimeout,
  activityMode: setting('VERIFY_ACTIVITY_MODE', oneOf(['local', 'remote']), 'local'),
  targetLimits: {
    maxWindows: setting('VERIFY_MAX_WINDOWS_PER_TARGET', wholeNumber(1, 10_000), 5),
    maxSends: setting('VERIFY_MAX_SENDS_PER_TARGET', wholeNumber(1, 10_000), 10),
    periodSeconds: setting('VERIFY_TARGET_PERIOD_SECONDS', wholeNumber(60, 31 * 86_400), 86_400),
  },
});

/** Defaults of every verification window's policy and the helpers' deadline. */
export type VerifyConfig = z.output<typeof verifyEnv.schema>;

// ---- Send guards ------------------------------------------------------------------------------

const countryCode = /^[A-Z]{2}$/;

const guardEnv = envSection({
  mode: setting('GUARD_MODE', oneOf(['on', 'off']), 'on'),
  admission: setting('GUARD_ADMISSION', oneOf(['lease', 'shard']), 'lease'),
  countries: setting(
    'GUARD_COUNTRIES',
    read(
      commaList.transform((items, ctx): '*' | string[] => {
        const codes = items.map((item) => item.toUpperCase());
        if (codes.length === 0 || (codes.length === 1 && codes[0] === '*')) return '*';
        if (!codes.every((code) => countryCode.test(code))) {
          ctx.addIssue({
            code: 'custom',
            message: 'must be * or list ISO 3166-1 alpha-2 country codes, such as GB,FR',
          });
          return z.NEVER;
        }
        return codes;
      }),
    ),
  ),
  country: {
    sends: setting('GUARD_COUNTRY_SENDS', wholeNumber(1, 10_000_000), 1_000),
    periodSeconds: setting('GUARD_COUNTRY_PERIOD_SECONDS', wholeNumber(60, 31 * 86_400), 3_600),
    burst: setting('GUARD_COUNTRY_BURST', wholeNumber(1, 1_000_000), 100),
    burstSeconds: setting('GUARD_COUNTRY_BURST_SECONDS', wholeNumber(1, 86_400), 60),
    perCountry: setting(
      'GUARD_COUNTRY_BUDGETS',
      read(
        commaList.pipe(
          z
            .array(
              z
                .string()
                .regex(/^[A-Za-z]{2}:\d{1,8}$/, 'must list COUNTRY:SENDS pairs, such as GB:5000,FR:200')
                .transform((pair) => [pair.slice(0, 2).toUpperCase(), Number(pair.slice(3))] as const),
            )
            .transform((pairs) => Object.fromEntries(pairs) as Record<string, number>),
        ),
      ),
    ),
  },
  shards: setting('GUARD_SHARDS', wholeNumber(1, 64), 4),
  ip: {
    sends: setting('GUARD_IP_SENDS', wholeNumber(1, 1_000_000), 20),
    periodSeconds: setting('GUARD_IP_PERIOD_SECONDS', wholeNumber(60, 31 * 86_400), 3_600),
  },
  device: {
    sends: setting('GUARD_DEVICE_SENDS', wholeNumber(1, 1_000_000), 10),
    periodSeconds: setting('GUARD_DEVICE_PERIOD_SECONDS', wholeNumber(60, 31 * 86_400), 3_600),
  },
  block: {
    numbers: setting('GUARD_BLOCK_NUMBERS', wholeNumber(1, 100_000), 10),
    trailingDigits: setting('GUARD_BLOCK_DIGITS', wholeNumber(1, 8), 3),
    periodSeconds: setting('GUARD_BLOCK_PERIOD_SECONDS', wholeNumber(60, 86_400), 600),
    mode: setting('GUARD_BLOCK_MODE', oneOf(['off', 'monitor', 'enforce']), 'enforce'),
  },
  exempt: setting(
    'GUARD_EXEMPT_NUMBERS',
    list(
      z.array(
        z.string().regex(/^\+\d{1,15}\*?$/, 'must list E.164 numbers, or prefixes ending in * (+447700900*)'),
      ),
    ),
  ),
});

/** What stops SMS pumping: see src/guards/settings.ts. */
export type GuardConfig = z.output<typeof guardEnv.schema>;

// ---- Notify -----------------------------------------------------------------------------------

const notifyEnv = envSection({
  deliveryTimeoutSeconds: setting('NOTIFY_DELIVERY_TIMEOUT_SECONDS', wholeNumber(1, 86_400), 900),
});

/** How long a notification run waits for its message's final delivery status. */
export type NotifyConfig = z.output<typeof notifyEnv.schema>;

// ---- Service ----------------------------------------------------------------------------------

const serviceEnv = envSection({
  host: setting('HOST', nonEmpty, '127.0.0.1'),
  port: setting('PORT', port, 3000),
  apiToken: setting('SERVICE_API_TOKEN', token),
  adminToken: setting('SERVICE_ADMIN_TOKEN', token),
  bodyLimitBytes: setting('SERVICE_BODY_LIMIT_BYTES', wholeNumber(1_024, 10_485_760), 65_536),
  allowOverrides: setting('SERVICE_ALLOW_OVERRIDES', list(z.array(z.string()))),
  corsOrigins: setting(
    'SERVICE_CORS_ORIGINS',
    list(
      z.array(
        z
          .string()
          .regex(
            /^https?:\/\/[^/\s,]+$/,
            'must list origins such as https://app.example.com (scheme and host, no path)',
          ),
      ),
    ),
  ),
});

/** The HTTP service's address, its bearer token, its request size limit and the browsers it serves. */
export type ServiceConfig = z.output<typeof serviceEnv.schema>;

// ---- Metrics ----------------------------------------------------------------------------------

const metricsEnv = envSection({
  host: setting('METRICS_HOST', nonEmpty, '127.0.0.1'),
  port: setting('METRICS_PORT', port, 9464),
  token: setting('METRICS_TOKEN', token),
});

/**
 * Where the worker serves its Prometheus metrics (`0`: not served), and the bearer token both `/metrics`
 * endpoints (the worker's and the service's) require when it is set.
 */
export type MetricsConfig = z.output<typeof metricsEnv.schema>;

// ---- Worker -----------------------------------------------------------------------------------

const workerEnv = envSection({
  // Unset: long enough for the longest call in flight (src/shutdown-grace.ts).
  shutdownGraceMs: setting('WORKER_SHUTDOWN_GRACE_MS', optionalWholeNumber(0, 3_600_000)),
});

/** How the worker stops: how long its calls in flight may take to finish (unset: as long as they can last). */
export type WorkerConfig = z.output<typeof workerEnv.schema>;

// ---- Privacy ----------------------------------------------------------------------------------

const idKey = setting(
  'VERIFY_ID_KEY',
  optionalText(z.string().min(16, 'must be at least 16 characters (it keys an HMAC)')),
);
const keyRing = setting('PAYLOAD_CODEC_KEYS', parsed(parseKeyRing, KeyRingError));
const codecTokens = setting(
  'CODEC_API_TOKEN',
  // Two tokens at once, so the codec credential can rotate without a gap.
  list(
    z
      .array(z.string().min(16, 'each token must be at least 16 characters'))
      .max(2, 'at most two tokens (the current one and the one being rotated out)'),
  ),
);

const privacyMode = setting('PRIVACY_MODE', oneOf(['encrypted', 'plaintext']), 'encrypted');

/** How to make each privacy key, for the error a production entry point gives without it. */
export const privacyKeyRecipes: Readonly<Record<string, string>> = {
  [idKey.variable]: `node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`,
  [keyRing.variable]: `node -e "console.log('k1:'+require('crypto').randomBytes(32).toString('base64'))"`,
  [codecTokens.variable]: `node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))"`,
};

const privacyEnv = envSection({
  mode: privacyMode,
  idKey,
  keyRing,
  codecTokens,
  corsOrigins: setting(
    'CODEC_CORS_ORIGINS',
    read(
      commaList.transform((origins) =>
        origins.length > 0 ? origins : ['http://127.0.0.1:8233', 'http://localhost:8233'],
      ),
    ),
  ),
});

/**
 * Personal data at rest: `encrypted` (the default) keys workflow IDs with an HMAC and encrypts every
 * payload; `plaintext` is the explicit opt-out. Also the codec endpoints' own credential.
 */
export type PrivacyConfig = z.output<typeof privacyEnv.schema>;

// ---- The whole configuration ------------------------------------------------------------------

const sections = {
  temporal: temporalEnv,
  prelude: preludeEnv,
  sandbox: sandboxEnv,
  verify: verifyEnv,
  guards: guardEnv,
  notify: notifyEnv,
  service: serviceEnv,
  metrics: metricsEnv,
  worker: workerEnv,
  privacy: privacyEnv,
};

const fullEnv = z.object(schemasOf(sections)).superRefine((config, ctx) => {
  // A caller must get the real answer of a send or a check, not "no answer", even when every call
  // times out.
  const worstMs = callWorstCaseMs(config.prelude.timeoutMs + lifecycleAttemptMarginMs);
  if (config.verify.callTimeoutMs < worstMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['verify', callTimeout.variable],
      message:
        `must be at least ${worstMs} ms, the longest a send or a check can take with ${preludeTimeout.variable}=` +
        `${config.prelude.timeoutMs} (limits beside predict, then create, or a check's attempts, each with its retries, then a read of Prelude's record); raise it or lower ${preludeTimeout.variable}`,
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
  const parsed = fullEnv.safeParse(
    Object.fromEntries(Object.keys(sections).map((section) => [section, env])),
  );
  if (parsed.success) return parsed.data;
  // path is [section, VARIABLE]; the variable's name is what a user can act on.
  throw configError(parsed.error.issues, (path) => path[1] ?? path[0]);
}

/**
 * Reads one table's section from the environment the way {@link loadConfig} reads the configuration:
 * how the benchmarks and the chaos and storm runs read their own knobs (`BENCH_*`, `CHAOS_*`, …).
 *
 * @throws ConfigError naming every variable with a bad value.
 */
export function loadSection<Out>(section: EnvSection<Out>, env: NodeJS.ProcessEnv = loadProcessEnv()): Out {
  const parsed = section.schema.safeParse(env);
  if (parsed.success) return parsed.data;
  throw configError(parsed.error.issues, (path) => path[0]);
}

function configError(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  variableOf: (path: readonly PropertyKey[]) => PropertyKey | undefined,
): ConfigError {
  return new ConfigError(
    issues.map((issue) => ({
      variable: String(variableOf(issue.path) ?? 'configuration'),
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
  return Object.values(sections).flatMap((section) => section.variables);
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
  const missing = [
    { variable: idKey.variable, set: Boolean(privacy.idKey) },
    { variable: keyRing.variable, set: Boolean(privacy.keyRing) },
  ].filter((key) => !key.set);
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map(({ variable }) => ({
        variable,
        message:
          `required: phone numbers, e-mail addresses and codes are protected by default. Make one with\n` +
          `      ${privacyKeyRecipes[variable]}\n` +
          `    (npm start makes and keeps its own; ${privacyMode.variable}=plaintext opts out, storing them in clear)`,
      })),
    );
  }
  return { idKey: privacy.idKey!, keyRing: privacy.keyRing };
}
