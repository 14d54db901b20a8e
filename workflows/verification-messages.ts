/**
 * The verification window's contract: its input, result, and the updates, signals and queries that
 * clients (the helpers in src/client, the HTTP service, the webhook ingest) send it.
 * Deterministic and I/O-free: imported by workflow code and by clients alike.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CreateVerificationRequest, Target } from '../src/prelude';
import type { GuardGrantRef } from './send-guard-messages';
import {
  targetLimitsIdPrefix,
  targetRateLimited,
  type TargetLimits,
  type TargetUsage,
} from './target-limits-messages';

/** What is being verified, already normalised (E.164 phone number or lower-cased e-mail). */
export type VerificationTarget = Target;

/** Prelude's code format: 4 to 8 letters or digits. */
export const codePattern = /^[A-Za-z0-9]{4,8}$/;

/** Every window's workflow ID is this prefix followed by its target key. */
export const windowIdPrefix = 'verification-';

/** The workflow ID of the limits entity of a window's target: both are named by the target key. */
export function targetLimitsIdOf(windowId: string): string {
  return `${targetLimitsIdPrefix}${windowId.slice(windowIdPrefix.length)}`;
}

/** How the window screens targets with Prelude Watch before sending a code. */
export type FraudMode = 'off' | 'monitor' | 'enforce';

/** The rules of one window. Defaults come from configuration; each start may override any of them. */
export interface WindowPolicy {
  /** How long the window stays open after it starts. */
  windowSeconds: number;
  /** Wrong codes allowed before the window closes with `max_checks`. */
  maxChecks: number;
  /** Codes sent per window, the first included. */
  maxSends: number;
  /** Minimum time between two sends. */
  resendCooldownSeconds: number;
  /** `monitor` records a Watch prediction; `enforce` also blocks a suspicious target before any send. */
  fraudMode: FraudMode;
  /** Report the window's start and success to Prelude Watch when it closes. */
  watchFeedback: boolean;
  /** Notify template sent to the target once verified. */
  successTemplateId?: string;
  /**
   * Channels to fall back through when an attempt is reported undeliverable (or unreported for
   * `deliveryTimeoutSeconds`), e.g. `['sms', 'whatsapp', 'voice']`. Empty or absent: no automatic resend.
   */
  fallbackChannels?: string[];
  /** With fallback channels: resend when no `delivered` report came this long after a send (0: never). */
  deliveryTimeoutSeconds?: number;
}

/** Options passed through to Prelude's create call (its `options` object). */
export type SendOptions = NonNullable<CreateVerificationRequest['options']>;

/** The device and network signals Prelude uses for fraud scoring (its `signals` object). */
export type SendSignals = NonNullable<CreateVerificationRequest['signals']>;

/**
 * How the window calls Prelude for the steps a user waits on (create, check, predict).
 * `local`: local activities, answered inside the workflow task that took the request (the fast
 * default); `remote`: regular activities, which any worker on the task queue may run and the Web UI
 * shows as activity events.
 */
export interface LifecycleCallSettings {
  mode: 'local' | 'remote';
  /** Deadline of one attempt: the Prelude client's own timeout plus a margin. */
  attemptTimeoutMs: number;
  /**
   * Prelude's minimum delay between a verification's retries (`PRELUDE_RESEND_DELAY_SECONDS`), when
   * configured. Shorter than the pauses between a call's attempts (0), each attempt of a send whose
   * every answer was lost may have sent a code; absent, its attempts after the first met the delay.
   */
  preludeResendDelaySeconds?: number;
}

/** How a window makes its calls, as its input records them. */
export interface WindowCallSettings extends LifecycleCallSettings {
  /**
   * The limits reservation and Prelude's create made in one call (activities/send.ts), so that a
   * send runs its calls in one round. Always set by `startVerification`; a window whose input lacks
   * it (started by earlier code, as 0.1.0's `*-two-calls` histories) makes them one after the other.
   */
  reserveWithCreate?: boolean;
  /**
   * Watch predict made inside that same call when its verdict is only recorded (`monitor`), rather
   * than beside it as a call of its own. Always set by `startVerification`; a window whose input lacks
   * it (as 0.1.0's `*-predict-apart` histories) makes predict its own call.
   */
  predictWithSend?: boolean;
}

/** Workflow input: everything a window needs, fixed when it starts. */
export interface VerificationInput {
  target: VerificationTarget;
  /** The key the workflow ID is built from (the target, or its HMAC). */
  targetKey: string;
  policy: WindowPolicy;
  calls: WindowCallSettings;
  /** The target's limits across windows. */
  limits: TargetLimits;
}

/** Arguments of one send (the first one, or a resend). */
export interface SendCodeRequest {
  signals?: SendSignals;
  options?: SendOptions;
  dispatchId?: string;
  idempotency?: IdempotencyBinding;
  /**
   * The send guards' grant of this send (absent where no guard judged it): a send that sends more
   * than one code tells its shard how many, as it tells the target's limits.
   */
  guard?: GuardGrantRef;
}

/** Prelude's words for a send: `success` opened the window, `retry` resent in it. */
export type SendStatus = 'success' | 'retry' | 'challenged' | 'blocked' | 'shadow_blocked' | (string & {});

/** The answer to a send, shaped like Prelude's create answer plus the window's bookkeeping. */
export interface SendCodeResult {
  status: SendStatus;
  /** The workflow ID, i.e. the window's ID on our side. */
  windowId: string;
  verificationId?: string;
  method?: string;
  channels?: string[];
  /** Why a target was blocked (`suspicious`, `in_block_list`, …). */
  reason?: string;
  riskFactors?: string[];
  sendsUsed: number;
  /** ISO time the window closes. */
  expiresAt: string;
  /** ISO time from which a resend is accepted; absent once no send is left. */
  nextResendAt?: string;
}

/**
 * An `Idempotency-Key` bound to its request: hashes only (the key and the request may identify a
 * person). The same key with another request is refused; the same key and request get the first
 * answer again.
 */
export interface IdempotencyBinding {
  keyHash: string;
  requestHash: string;
}

/** Arguments of a check. */
export interface CheckCodeRequest {
  code: string;
  idempotency?: IdempotencyBinding;
}

/** The answer to a check, in Prelude's words. */
export interface CheckCodeResult {
  status: 'success' | 'failure' | 'expired_or_not_found';
  windowId: string;
  verificationId?: string;
  checksUsed: number;
  checksLeft: number;
}

/** A delivery report for one attempt, from Prelude's webhooks (via the ingest). */
export interface DeliveryStatusReport {
  /** The webhook event's ID, so a report is applied once. */
  eventId: string;
  /** `att_…`: the attempt the report is about. */
  attemptId: string;
  verificationId?: string;
  /** `submitted`, `in_transit`, `delivered`, `undeliverable`, `unknown`, … */
  status: string;
  /** ISO time Prelude gives for the report. */
  time: string;
  channel?: string;
}

/** Every reason a window closes, in the order the API reference lists them. */
export const outcomes = [
  'verified',
  'expired',
  'max_checks',
  'max_attempts',
  'blocked',
  'canceled',
  'failed',
  /** The first send was refused by the target's limits across windows: nothing was sent. */
  'rate_limited',
] as const;

/** Why the window closed. */
export type Outcome = (typeof outcomes)[number];

/** One code sent in the window. */
export interface AttemptRecord {
  /** 1-based position in the window. */
  number: number;
  /**
   * `initial`; `user_retry` (a resend); `fallback` (our automatic resend on the next channel after a
   * delivery failure); `auto_retry` (an attempt Prelude added on its own).
   */
  trigger: 'initial' | 'user_retry' | 'fallback' | 'auto_retry';
  /** For a fallback: the channel that failed. */
  switchedFrom?: string;
  /**
   * `true` for a send Prelude made although its answer was lost (a retried call told us so): it
   * counts against the window's sends like any other.
   */
  inferred?: boolean;
  /** ISO time we asked Prelude to send it (or Prelude reported it, for automatic attempts). */
  sentAt: string;
  channel?: string;
  /** `att_…`, once a webhook has named it. */
  attemptId?: string;
  deliveryStatus?: string;
  deliveryUpdatedAt?: string;
}

/** Everything the window knows: the `state` query's answer and, once closed, the workflow's result. */
export interface VerificationState {
  windowId: string;
  target: VerificationTarget;
  targetKey: string;
  /** `open` while the window runs. */
  outcome: 'open' | Outcome;
  verificationId?: string;
  method?: string;
  channels?: string[];
  reason?: string;
  riskFactors?: string[];
  /** Watch's verdict, when the fraud mode asked for one. */
  prediction?: 'legitimate' | 'suspicious' | (string & {});
  attempts: AttemptRecord[];
  sendsUsed: number;
  sendsLeft: number;
  nextResendAt?: string;
  checksUsed: number;
  checksLeft: number;
  openedAt: string;
  expiresAt: string;
  closedAt?: string;
  /** Why the window failed, when the outcome is `failed`. */
  failure?: string;
  /**
   * Keyed requests seen by this window, by key hash: the request each key was first used for, and
   * for a check its answer (given again to a retry, even once the window has closed).
   */
  keyed?: Record<string, { requestHash: string; answer?: CheckCodeResult }>;
  /**
   * Fingerprints of codes whose check failed after an attempt may have reached Prelude, each with the
   * checks the window counted for its lost attempts: a later check of the same code that finds
   * Prelude's window closed is that code's success, and gives back all but one of them (Prelude
   * counted its first attempt only). Not shown over HTTP.
   */
  uncertainCodes?: Record<string, number>;
  /** The target's allowance across windows after this window's latest send. */
  targetUsage?: TargetUsage;
  /**
   * Set when the outcome was inferred by Prelude's lifecycle rules after a call whose answer was
   * lost, e.g. a retried check that found Prelude's window closed by the earlier, successful attempt.
   */
  inferred?: string;
  policy: WindowPolicy;
}

/**
 * Failure types the handlers reject with (validators reject before anything reaches history).
 * The client helpers turn them into `VerificationError` codes.
 */
export const rejection = {
  windowClosed: 'window_closed',
  invalidCode: 'invalid_code',
  prematureRetry: 'premature_retry',
  tooManyAttempts: 'too_many_attempts',
  tooManyChecks: 'too_many_checks',
  targetRateLimited,
  idempotencyKeyReused: 'idempotency_key_reused',
} as const;

/** Sends the first code of the window, or resends one. */
export const sendCodeUpdate = defineUpdate<SendCodeResult, [SendCodeRequest]>('sendCode');
/** Checks a code the user typed. */
export const checkCodeUpdate = defineUpdate<CheckCodeResult, [CheckCodeRequest]>('checkCode');
/** Closes an open window without verifying it. */
export const cancelUpdate = defineUpdate<VerificationState, []>('cancel');
/** A delivery report from Prelude's webhooks. */
export const deliveryStatusSignal = defineSignal<[DeliveryStatusReport]>('deliveryStatus');
/** The window as it stands. */
export const stateQuery = defineQuery<VerificationState>('state');
