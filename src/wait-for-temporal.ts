/**
 * Production entry points wait for Temporal rather than exit when it is not up yet (a deployment
 * whose worker starts before the cluster, a restart of the cluster): each failed attempt is logged,
 * with a backoff capped at 5 s.
 */
import type { TemporalConfig } from '../temporal.config';
import { loadPRetry } from './p-retry';

/** Runs `connect` until it succeeds, logging each failure; gives up only on `signal`. */
export async function untilTemporalAnswers<T>(
  config: Pick<TemporalConfig, 'address'>,
  connect: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const { default: pRetry } = await loadPRetry();
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
