import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configVariables, loadConfig } from '../../temporal.config';
import { policyOverridesSchema } from '../../src/client/schemas';
import { settingsUpdateSchema } from '../../src/sandbox/settings';

describe('loadConfig', () => {
  it('gives working local defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config.temporal).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'prelude-verify',
      apiKey: undefined,
      tls: undefined,
    });
    expect(config.prelude.baseUrl).toBe('https://api.prelude.dev');
    expect(config.sandbox).toMatchObject({ port: 4010, windowSeconds: 600, maxAttempts: 5, codeSize: 6 });
  });

  it('names every variable with a bad value in one error', () => {
    const attempt = () =>
      loadConfig({ TEMPORAL_ADDRESS: 'no-port', SANDBOX_CODE_SIZE: '12', SANDBOX_ERROR_RATE: 'lots' });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const variables = (error as ConfigError).problems.map((p) => p.variable).sort();
      expect(variables).toEqual(['SANDBOX_CODE_SIZE', 'SANDBOX_ERROR_RATE', 'TEMPORAL_ADDRESS']);
      expect((error as Error).message).toContain('TEMPORAL_ADDRESS: must be host:port');
    }
  });

  it('treats empty values as unset and trims a trailing slash off the Prelude URL', () => {
    const config = loadConfig({ PRELUDE_API_KEY: '', PRELUDE_BASE_URL: 'http://127.0.0.1:4010/' });
    expect(config.prelude.apiKey).toBeUndefined();
    expect(config.prelude.baseUrl).toBe('http://127.0.0.1:4010');
  });

  it('reads PEM keys inline or from a file, and refuses a path that does not exist', () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n';
    const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'key.pem');
    writeFileSync(file, pem);
    expect(loadConfig({ PRELUDE_WEBHOOK_PUBLIC_KEY: file }).prelude.webhookPublicKey).toBe(pem.trim());
    expect(loadConfig({ PRELUDE_WEBHOOK_PUBLIC_KEY: pem }).prelude.webhookPublicKey).toBe(pem.trim());
    expect(() => loadConfig({ PRELUDE_WEBHOOK_PUBLIC_KEY: '/nope/key.pem' })).toThrow(
      /PRELUDE_WEBHOOK_PUBLIC_KEY: is neither a PEM public key nor the path/,
    );
  });

  it('defaults to the safe settings: fraud check on, per-target limits, privacy keys required', () => {
    const config = loadConfig({});
    expect(config.verify.policy.fraudMode).toBe('monitor');
    expect(config.verify.targetLimits).toEqual({ maxWindows: 5, maxSends: 10, periodSeconds: 86_400 });
    expect(config.privacy.mode).toBe('encrypted');
    expect(config.service.allowOverrides).toEqual([]);
  });

  it('refuses a helper deadline shorter than a send’s or a check’s worst case', () => {
    expect(() => loadConfig({ PRELUDE_TIMEOUT_MS: '10000' })).toThrow(
      /VERIFY_CALL_TIMEOUT_MS: must be at least 67200 ms/,
    );
    expect(
      loadConfig({ PRELUDE_TIMEOUT_MS: '10000', VERIFY_CALL_TIMEOUT_MS: '67200' }).verify.callTimeoutMs,
    ).toBe(67_200);
  });

  it('requires the mTLS certificate and key together', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
    expect(() => loadConfig({ TEMPORAL_TLS_CERT: pem })).toThrow(/TEMPORAL_TLS_KEY: .*go together/);
  });

  it('reads each variable once, the sandbox’s among them', () => {
    const variables = configVariables();
    expect(new Set(variables).size).toBe(variables.length);
    expect(variables).toEqual(
      expect.arrayContaining(['TEMPORAL_ADDRESS', 'SANDBOX_CODE_SIZE', 'CODEC_API_TOKEN']),
    );
  });

  it('gives a runtime update and a per-window override the limits of the variable', () => {
    expect(() => loadConfig({ SANDBOX_CODE_SIZE: '9' })).toThrow(/SANDBOX_CODE_SIZE/);
    expect(settingsUpdateSchema.safeParse({ codeSize: 9 }).success).toBe(false);
    expect(settingsUpdateSchema.safeParse({ codeSize: 8 }).success).toBe(true);
    expect(() => loadConfig({ VERIFY_MAX_CHECKS: '101' })).toThrow(/VERIFY_MAX_CHECKS/);
    expect(policyOverridesSchema.safeParse({ maxChecks: 101 }).success).toBe(false);
    expect(policyOverridesSchema.safeParse({ maxChecks: 100 }).success).toBe(true);
    expect(() => loadConfig({ VERIFY_FALLBACK_CHANNELS: 'sms,pigeon' })).toThrow(
      /VERIFY_FALLBACK_CHANNELS: must list channels among sms, rcs, whatsapp/,
    );
    expect(policyOverridesSchema.safeParse({ fallbackChannels: ['pigeon'] }).success).toBe(false);
  });
});
