/**
 * Production entry points wait for Temporal rather than exit when it is not up yet (a deployment
 * whose worker starts before the cluster, a restart of the cluster): each failed attempt is logged,
 * with a backoff capped at 5 s.
 */
import type { TemporalConfig } from '../temporal.config';

/** Runs `connect` until it succeeds, logging each failure; gives up only on `signal`. */
export async function untilTemporalAnswers<T>(
  config: Pick<TemporalConfig, 'address'>,
  connect: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  // p-retry ships only as an ES module; this package is CommonJS.
  const { default: pRetry } = await import('p-retry');
  return pRetry(connect, {
    retries: Infinity,
    minTimeout: 250,
    maxTimeout: 5_000,
    signal,
    onFailedAttempt: ({ error, attemptNumber }) =>
      console.warn(
        `Temporal at ${config.address} does not answer (attempt ${attemptNumber}: ${error.message}); ` +
          'trying again',
      ),
  });
}
