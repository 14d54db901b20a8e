import {
  isLifecycleCode,
  PreludeError,
  type CheckVerificationResponse,
  type CreateVerificationRequest,
  type CreateVerificationResponse,
  type LifecycleCode,
  type PreludeClient,
  type Target,
} from '../src/prelude';
import { noteTaskStart, runActivityCall } from './failures';

/** What the verify activities need. */
export interface VerifyDependencies {
  prelude: PreludeClient;
  /** Where Prelude posts this deployment's webhooks (`options.callback_url`). */
  callbackUrl?: string;
}

/** Input of {@link VerifyActivities.createVerification}. */
export interface CreateVerificationInput {
  target: Target;
  /** The window's workflow ID: Prelude echoes it in every webhook about this verification. */
  correlationId: string;
  signals?: CreateVerificationRequest['signals'];
  options?: CreateVerificationRequest['options'];
  dispatchId?: string;
  /**
   * When the workflow task that asks for this attempt began (its `Date.now()`): a worker that
   * stalled since then does not make the call (activities/stall-fence.ts).
   */
  taskStartedAt?: number;
}

/** Prelude refused a lifecycle step (HTTP 429 with a lifecycle code): a result, not a crash. */
export interface LifecycleRefusal {
  kind: 'refused';
  code: LifecycleCode;
  message: string;
  retryAfterMs?: number;
}

/**
 * Outcome of a create call. One attempt's: Prelude has no idempotency key, so whether an earlier
 * attempt may have reached it is for the caller to know (the window makes its attempts itself,
 * workflows/call-attempts.ts).
 */
export type CreateVerificationOutcome =
  { kind: 'sent'; response: CreateVerificationResponse } | LifecycleRefusal;

/** Outcome of a check call (one attempt's, as for create). */
export type CheckVerificationOutcome =
  { kind: 'checked'; response: CheckVerificationResponse } | LifecycleRefusal;

/** Input of {@link VerifyActivities.checkVerification}. */
export interface CheckVerificationInput {
  target: Target;
  code: string;
}

/** Input of {@link VerifyActivities.readCheckHistory}. */
export interface CheckHistoryInput {
  /** Prelude's ID of the verification (the create's `id`). */
  verificationId: string;
}

/**
 * What Prelude's History API holds of a verification (`read`): every check it judged, and how many
 * of them were right; and `sends`, the attempts its caller asked for (trigger `initial` or
 * `user_retry`: not Prelude's own `auto_retry`), absent where an attempt's trigger cannot be read.
 * `unavailable`: the record cannot be had (no such record, an account without the History API, a
 * key not allowed to read it), and asking again will not change that.
 */
export type CheckHistory =
  { kind: 'read'; checks: number; rightChecks: number; sends?: number } | { kind: 'unavailable' };

/** Builds the Verify activities around a Prelude client. */
export function createVerifyActivities({ prelude, callbackUrl }: VerifyDependencies) {
  return {
    /** Creates a verification, or a retry in the open Prelude window (Prelude decides which). */
    async createVerification(input: CreateVerificationInput): Promise<CreateVerificationOutcome> {
      noteTaskStart(input.taskStartedAt);
      const options = { ...input.options, ...(callbackUrl ? { callback_url: callbackUrl } : {}) };
      return callLifecycle(async (signal) => ({
        kind: 'sent' as const,
        response: await prelude.verification.create(
          {
            target: input.target,
            ...(input.signals ? { signals: input.signals } : {}),
            ...(input.dispatchId ? { dispatch_id: input.dispatchId } : {}),
            ...(Object.keys(options).length > 0 ? { options } : {}),
            metadata: { correlation_id: input.correlationId },
          },
          { signal },
        ),
      }));
    },

    /**
     * Reads how many checks Prelude judged in a verification, and how many sends it made, from its
     * History API: the truth a window counts by after a check or a send whose answer was lost. A
     * read, so safe to repeat: transient failures are retried by Temporal; a refusal that will not
     * change is a result.
     */
    async readCheckHistory({ verificationId }: CheckHistoryInput): Promise<CheckHistory> {
      return runActivityCall(async (signal) => {
        try {
          const history = await prelude.verification.history(verificationId, { signal });
          const validity = history.lifecycle.events
            .filter((event) => event.type === 'check')
            .map((event) => event.check?.is_valid ?? event.is_valid);
          // A check whose verdict cannot be read makes the record unreadable: the window then
          // counts by its own rules rather than take it for a wrong code.
          if (validity.some((valid) => valid === undefined)) return { kind: 'unavailable' as const };
          const right = validity.filter((valid) => valid === true).length;
          const triggers: unknown[] = history.lifecycle.events
            .filter((event) => event.type === 'attempt')
            .map((event) => event.attempt?.trigger ?? event.trigger);
          // As for a check's verdict: an attempt whose trigger is missing, or one this code does
          // not know, leaves the sends unread.
          const sendsRead = triggers.every(
            (trigger) => trigger === 'initial' || trigger === 'user_retry' || trigger === 'auto_retry',
          );
          return {
            kind: 'read' as const,
            checks: validity.length,
            // A converted verification had its right check, however its events read.
            rightChecks: history.status === 'converted' ? Math.max(1, right) : right,
            ...(sendsRead ? { sends: triggers.filter((trigger) => trigger !== 'auto_retry').length } : {}),
          };
        } catch (error) {
          if (error instanceof PreludeError && !error.retryable) return { kind: 'unavailable' as const };
          throw error;
        }
      });
    },

    /** Checks a code against the target's open Prelude window. */
    async checkVerification(input: CheckVerificationInput): Promise<CheckVerificationOutcome> {
      return callLifecycle(async (signal) => ({
        kind: 'checked' as const,
        response: await prelude.verification.check({ target: input.target, code: input.code }, { signal }),
      }));
    },
  };
}

/** The Verify activities. */
export type VerifyActivities = ReturnType<typeof createVerifyActivities>;

/** A lifecycle call, run by {@link runActivityCall}: Prelude's lifecycle refusals come back as results. */
async function callLifecycle<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T | LifecycleRefusal> {
  return runActivityCall(async (signal) => {
    try {
      return await call(signal);
    } catch (error) {
      if (error instanceof PreludeError && error.kind === 'lifecycle' && isLifecycleCode(error.code)) {
        const { code, message, retryAfterMs } = error;
        return { kind: 'refused' as const, code, message, retryAfterMs };
      }
      throw error;
    }
  });
}
