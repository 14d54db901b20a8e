import type { VerificationErrorCode } from '../errors';

/**
 * Why a verification call did not give an answer in Prelude's words: `verificationErrors` in the
 * error table (src/errors) says what each code means and the HTTP status the service answers it with.
 */
export type { VerificationErrorCode };

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
    /**
     * On a failed send: true when no code went out (Prelude answered every attempt with an error),
     * so the send counts against no limit and the user may simply try again.
     */
    readonly nothingSent?: boolean,
  ) {
    super(message);
  }
}
