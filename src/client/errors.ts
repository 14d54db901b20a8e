/** Why a verification call did not give an answer in Prelude's words. */
export type VerificationErrorCode =
  /** Resend before the cooldown ended (`retryAfterSeconds` says how long to wait). */
  | 'premature_retry'
  /** Every send of the window is used. */
  | 'too_many_attempts'
  /** The target used its windows or sends across windows for the period (`retryAfterSeconds`). */
  | 'target_rate_limited'
  /** Every check of the window is used. */
  | 'too_many_checks'
  /** The code is not 4 to 8 letters or digits. */
  | 'invalid_code'
  /** The target, signals, options or policy are malformed, or Prelude refused them as such. */
  | 'invalid_request'
  /** The `Idempotency-Key` is malformed (1 to 255 of `A-Z a-z 0-9 . _ : -`). */
  | 'invalid_idempotency_key'
  /** The `Idempotency-Key` was used before for another request. */
  | 'idempotency_key_reused'
  /** No verification window is known for that target or ID. */
  | 'not_found'
  /** Prelude could not be reached, or kept failing, within the activity's retries. */
  | 'prelude_unavailable'
  /** Prelude refused our credentials or the call outright. */
  | 'prelude_error'
  /** No worker answered in time (is `npm run worker` running on the task queue?). */
  | 'unavailable'
  /** The deadline passed while a worker was still sending (`windowId` names the window to read). */
  | 'pending';

/** The one error type of the client helpers: a `code` to branch on and a message for people. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
  constructor(
    readonly code: VerificationErrorCode,
    message: string,
    /** For `premature_retry` and `target_rate_limited`: seconds until a send is accepted. */
    readonly retryAfterSeconds?: number,
    /** For `pending`: the window whose send is still under way. */
    readonly windowId?: string,
  ) {
    super(message);
  }
}
