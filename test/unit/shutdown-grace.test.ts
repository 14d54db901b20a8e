/**
 * How long a stopping worker lets its Prelude calls finish (src/shutdown-grace.ts): as long as the
 * longest can last, on our own worker and, through the plugin, on a team's; a team's own choice
 * stands.
 */
import type { Client } from '@temporalio/client';
import { lifecycleAttemptMarginMs, loadConfig } from '../../temporal.config';
import { shutdownGraceMsFor } from '../../src/shutdown-grace';
import { verificationPlugin } from '../../src/temporal-plugin';
import { reserveAndCreateOptions } from '../../workflows/retry-policies';

describe('the shutdown grace', () => {
  it('outlasts the longest attempt a worker runs, whatever the Prelude timeout', () => {
    for (const preludeTimeoutMs of [100, 5_000, 120_000]) {
      const attempt = reserveAndCreateOptions(preludeTimeoutMs + lifecycleAttemptMarginMs);
      expect(shutdownGraceMsFor(preludeTimeoutMs)).toBeGreaterThan(Number(attempt.startToCloseTimeout));
    }
    // With the defaults: within an orchestrator's usual 30 s stop timeout.
    expect(shutdownGraceMsFor(loadConfig({}).prelude.timeoutMs)).toBe(10_000);
  });

  it('is the grace the configuration gives when one is set', () => {
    expect(loadConfig({}).worker.shutdownGraceMs).toBeUndefined();
    expect(loadConfig({ WORKER_SHUTDOWN_GRACE_MS: '2500' }).worker.shutdownGraceMs).toBe(2_500);
    expect(() => loadConfig({ WORKER_SHUTDOWN_GRACE_MS: 'soon' })).toThrow(/WORKER_SHUTDOWN_GRACE_MS/);
  });

  it("is set on a team's worker by the plugin, unless the team set its own", () => {
    const plugin = verificationPlugin({
      prelude: { apiKey: 'test-key', timeoutMs: 5_000 },
      keyRing: null,
      // Never called here: the activities only hold it.
      client: {} as Client,
    });
    expect(plugin.configureWorker({ taskQueue: 'theirs' }).shutdownGraceTime).toBe(10_000);
    expect(
      plugin.configureWorker({ taskQueue: 'theirs', shutdownGraceTime: '1 minute' }).shutdownGraceTime,
    ).toBe('1 minute');
  });
});
