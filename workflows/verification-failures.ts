/**
 * How the window fails a request. An update handler fails only its update when it throws an
 * ApplicationFailure (anything else would fail the workflow task, retried until fixed), and the
 * client helpers read the failure's type as their error code: so every failure is built here, one way.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** A request the window turns down, with how long to wait before asking again when that is known. */
export function refusal(type: string, message: string, retryAfterSeconds?: number): ApplicationFailure {
  return updateFailure(type, message, retryAfterSeconds === undefined ? undefined : [{ retryAfterSeconds }]);
}

/**
 * The failure an update reports for whatever its handler caught. An activity's failure keeps its
 * Prelude type (e.g. `Prelude.invalid_request`) and details, which the client maps to its own errors.
 */
export function asUpdateFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) {
    const { type, message, details } = error.cause;
    return updateFailure(type ?? 'Prelude.error', message, details ? [...details] : undefined);
  }
  return updateFailure('failed', describe(error));
}

/**
 * The failure of a send that sent nothing (every attempt of it answered with an error, and its
 * target's limits gave it back): `nothingSent` in its details tells the client helpers that no code
 * went out, so that the send guard gives back its share of the country's budget too.
 */
export function unsentSendFailure(error: unknown): ApplicationFailure {
  const { type, message, details } = asUpdateFailure(error);
  const [first, ...rest] = details ?? [];
  const marked = { ...(typeof first === 'object' && first !== null ? first : {}), nothingSent: true };
  return updateFailure(type ?? 'failed', message, [marked, ...rest]);
}

/** What went wrong, in words: an activity's own message rather than Temporal's wrapper around it. */
export function describe(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** A wait in whole seconds, at least one: Prelude and the cooldown count in ms, clients in seconds. */
export function wholeSeconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000));
}

/** Non-retryable: retrying cannot change a window's answer, and a retried update would run twice. */
function updateFailure(type: string, message: string, details?: unknown[]): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details });
}
