/**
 * The sandbox's knobs: read from configuration at start, changed at runtime with
 * `PUT /sandbox/config` (same names, camelCase, any subset).
 */
import { z } from 'zod';
import type { SandboxConfig } from '../../temporal.config';

/** Live settings (everything in the configuration section but where the server listens). */
export type SandboxSettings = Omit<SandboxConfig, 'host' | 'port' | 'webhookPrivateKey'>;

const numbers = z.array(z.string().min(1));

/** Body of `PUT /sandbox/config`. */
export const settingsUpdateSchema = z
  .object({
    windowSeconds: z.number().int().min(1).max(86_400),
    maxAttempts: z.number().int().min(1).max(100),
    minRetryDelaySeconds: z.number().min(0).max(3_600),
    maxChecks: z.number().int().min(1).max(100),
    codeSize: z.number().int().min(4).max(8),
    apiKey: z.string().min(1).nullable(),
    latencyMs: z.number().int().min(0).max(60_000),
    errorRate: z.number().min(0).max(1),
    rateLimitRate: z.number().min(0).max(1),
    undeliverableNumbers: numbers,
    suspiciousNumbers: numbers,
    unsubscribedNumbers: numbers,
    numberRateLimit: z.number().int().min(0).max(10_000),
    numberRateLimitSeconds: z.number().int().min(1).max(86_400),
    deliveryDelayMs: z.number().int().min(0).max(60_000),
    webhookRetries: z.number().int().min(0).max(30),
    webhookRetryMinMs: z.number().int().min(10).max(3_600_000),
  })
  .partial()
  .strict();

/** The live settings from the configuration section. */
export function initialSettings(config: SandboxConfig): SandboxSettings {
  const { host: _host, port: _port, webhookPrivateKey: _key, ...settings } = config;
  return settings;
}

/** Settings as `GET /sandbox/config` shows them: the API key is only said to be set or not. */
export function publicSettings(settings: SandboxSettings) {
  const { apiKey, ...rest } = settings;
  return { ...rest, apiKeySet: apiKey !== undefined };
}
