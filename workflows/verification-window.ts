/**
 * A verification window and the rules of Prelude's lifecycle that move it, one method per step:
 * the first send opens it, later ones resend, a check ends it on the right code, a fallback resends
 * on the next channel when a code is not delivered, cancel and expiry close it. The workflow
 * (`verification.ts`) hands each message to these methods and waits out the window's time.
 *
 * Every step that reads or changes the window (send, check, fallback, cancel, expiry) takes the one
 * turn (turn.ts), in the order they came: an answer is decided by the window as its step leaves it,
 * so an answer and the window's outcome always agree.
 */
import { currentUpdateInfo, log, patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type {
  Activities,
  CheckHistory,
  CheckVerificationOutcome,
  CreateVerificationInput,
  CreateVerificationOutcome,
  ReservationOutcome,
  ReserveAndCreateOutcome,
  ReserveTargetSendInput,
} from '../activities';
import {
  attemptLifecycleCall,
  AttemptsFailed,
  earlierExecutionsIn,
  failedAttempts,
  type Attempted,
} from './call-attempts';
import { outcomeSearchAttribute, verificationIdSearchAttribute } from './search-attributes';
import { Turn } from './turn';
import { lifecyclePauseMs } from './retry-policies';
import { applyDeliveryReport, nextChannel } from './verification-attempts';
import { lifecycleCalls, type LifecycleCalls } from './verification-calls';
import { asUpdateFailure, describe, refusal, unsentSendFailure, wholeSeconds } from './verification-failures';
import {
  codePattern,
  rejection,
  type AttemptRecord,
  type CheckCodeRequest,
  type CheckCodeResult,
  type DeliveryStatusReport,
  type IdempotencyBinding,
  type Outcome,
  type SendCodeRequest,
  type SendCodeResult,
  type VerificationInput,
  type VerificationState,
  type WindowPolicy,
} from './verification-messages';
import type { GuardGrantRef } from './send-guard-messages';
import { hasOutcomeToReport, type OutcomeReport } from './outcome-report';
import type { Asker } from './target-limits-messages';

/**
 * `patched()` ID (README, "Workflow changes and replay"): checks counted as Prelude counted them
 * after lost answers. A wrong code counts every lost attempt of it, where 0.1.0 counted at most one;
 * a code whose every attempt was lost, found right by its retry, counts one check in all, where 0.1.0
 * counted one more for the retry.
 */
const countEachLostCheckPatch = 'count-each-lost-check';

/**
 * `patched()` ID: a send whose every attempt failed after one may have reached Prelude counts that
 * send and leaves the window open, where 0.1.0 counted nothing (and closed the window `failed` on a
 * first send).
 */
const countLostSendPatch = 'count-lost-send';

/**
 * `patched()` ID: a send answered `retry` after attempts whose answers were lost counts each of them
 * as a code sent, where 0.1.0 counted one (a first send's) or none (a resend's).
 */
const countEachLostSendPatch = 'count-each-lost-send';

/**
 * `patched()` ID: a send run again after a workflow task lost to a crash counts the earlier runs that
 * reached the target's limits (each may have sent a code) as attempts whose answers were lost, where
 * 0.1.0 could not tell they ran.
 */
const countLostTaskSendsPatch = 'count-lost-task-sends';

/**
 * `patched()` ID: a send that sent more codes than its reservation counted (lost answers), or whose
 * reservation's answer never came back, tells the target's limits entity how many it sent, where
 * 0.1.0 left the entity counting one per granted reservation.
 */
const tellCodesSentPatch = 'tell-codes-sent';
/**
 * `patched()` ID: a send whose every attempt Prelude answered with an error sent no code: its reservation is given
 * back to the target's limits (`giveBackSend`), so that an outage locks no user out for the period.
 * Windows started by earlier code kept it counted (the marker is written only where it is given back).
 */
const giveBackUnsentSendPatch = 'give-back-unsent-send';
/**
 * `patched()` ID: a fallback send whose every attempt Prelude answered with an error gives its
 * reservation back too, as a user's send does (`give-back-unsent-send`). Earlier code left it
 * counted: the target's limits counted a code that never went out.
 */
const giveBackUnsentFallbackPatch = 'give-back-unsent-fallback';
/**
 * `patched()` ID: a user's send that Prelude refused (`premature_retry`, `too_many_attempts`…), with
 * no attempt of it whose fate is unknown, sent no code: its reservation is given back to the
 * target's limits, as for a send Prelude answered with errors (`give-back-unsent-send`). Earlier
 * code kept it counted: each resend Prelude refused brought the user closer to the target's limits.
 */
const giveBackRefusedSendPatch = 'give-back-refused-send';
/**
 * `patched()` ID: a fallback send that Prelude refused with no attempt of it whose fate is unknown
 * gives its reservation back too, as a user's send does (`give-back-refused-send`). Earlier code
 * kept it counted: where the delivery timeout is shorter than Prelude's resend delay, each fallback
 * Prelude refused used up one of the target's sends.
 */
const giveBackRefusedFallbackPatch = 'give-back-refused-fallback';
/**
 * `patched()` ID: a send Prelude refused as `too_many_attempts` after attempts of it whose answers
 * were lost counts those attempts as the codes that filled Prelude's window, and answers as sent,
 * where 0.1.0 answered the refusal (and closed the window on a first send).
 */
const fullAfterLostSendsPatch = 'full-after-lost-sends';
/**
 * `patched()` ID: a send counts the earlier runs of it that its reservation named (workflow tasks
 * lost to a crash) as attempts whose answers were lost whatever follows: when every attempt of it
 * then fails, and when the reservation was asked apart from the create. Earlier code counted them
 * only after a call that made both and succeeded (`count-lost-task-sends`), and missed their codes
 * otherwise.
 */
const countEveryLostTaskSendPatch = 'count-every-lost-task-send';
/**
 * `patched()` ID: a fallback send counts its attempts whose answers were lost as a resend does, where
 * earlier code counted one code per fallback whatever its attempts sent.
 */
const countLostFallbackSendsPatch = 'count-lost-fallback-sends';
/**
 * `patched()` ID: a fallback send Prelude refused as `too_many_attempts` after attempts of it whose
 * answers were lost counts each of those attempts, as a user's send does (`full-after-lost-sends`):
 * they are what filled Prelude's window. Earlier code counted them as an unanswered call's (the
 * first, and the others only where Prelude resends at once), and listed the other codes' reports as
 * Prelude's own retries.
 */
const fullAfterLostFallbacksPatch = 'full-after-lost-fallbacks';
/**
 * `patched()` ID: a delivery report that names an attempt the window has not recorded, and comes in
 * while a send is under way, is that send's: the attempt whose answer was lost (its reports come
 * while the send waits to try again), or the one whose answer is still on its way. The send's record
 * takes it over, so each code is listed once. Earlier code listed such a report as an `auto_retry`
 * beside the send's own record, one code twice.
 */
const claimReportsDuringSendPatch = 'claim-reports-during-send';
/**
 * `patched()` ID: a code counted from an attempt whose answer was lost is recorded on the channel
 * its send asked for (a fallback's, or the caller's `preferred_channel` or voice), where earlier code
 * recorded no channel; a fallback from it then moved back to the first channel of the list.
 */
const inferredSendChannelPatch = 'channel-of-inferred-sends';
/**
 * `patched()` ID: no fallback while a check's fate is unknown (every attempt of it failed after one
 * may have reached Prelude), until a later check's answer tells. A right code's lost check closed
 * Prelude's window; a fallback's create then opened a new one with a new code, and the user's retry of
 * the code they had was answered `failure` (found by the chaos run with fallback channels). Earlier
 * code fell back all the same.
 */
const holdFallbacksWhileCheckUnknownPatch = 'hold-fallbacks-while-check-unknown';
/**
 * `patched()` ID: a check whose every attempt was lost does not spend the window's last check. It
 * may have been a right code whose first attempt succeeded; only Prelude's answer to the user's retry
 * tells (`expired_or_not_found`: verified; `too_many_checks`: used up). Earlier code spent it and
 * closed the window `max_checks`, and a user whose right code Prelude had accepted was told
 * `expired_or_not_found` (found by the chaos run with Prelude slower than the client's timeout: 13
 * flows of 100). Nor do the lost attempts of a wrong code answered at last: a crash may have cut
 * them before they reached Prelude.
 */
const keepLastCheckPatch = 'keep-last-check-for-retry';

/**
 * `patched()` ID: a check whose answer was lost is counted from Prelude's History API, where the
 * verification has a record (phone targets, accounts that can read it): every check Prelude judged,
 * and whether this code was right. A check whose every attempt was lost is answered then as Prelude
 * judged it (`success`, `failure`), or, when none of its attempts reached Prelude, fails with
 * nothing spent. Earlier code counted each lost attempt as a wrong check (keeping the last for the
 * user's retry), one too many where a crash had cut the attempt before it reached Prelude.
 */
const readChecksFromHistoryPatch = 'read-checks-from-history';

/**
 * `patched()` ID: a send whose attempts' answers were lost counts those that sent a code from
 * Prelude's History API, where the verification has a record and the window knows its ID (a resend,
 * a fallback, a first send Prelude answered): the attempts Prelude made for its caller, less those
 * the window counted before. A send none of whose lost attempts reached Prelude then sent no code
 * for them: refused, it answers the refusal; failed, it fails with nothing sent. Earlier code
 * counted them by its rules (each, or the first), one or more too many where an attempt never
 * reached Prelude.
 */
const countSendsFromHistoryPatch = 'count-sends-from-history';

/** Who asks a send's reservation: the send's call, and the executions of it the window knows. */
type SendAsker = Pick<Asker, 'call' | 'known'>;

/** A resend on the next fallback channel, due at `at`, for the window's latest `attempt`. */
export interface Fallback {
  at: number;
  attempt: AttemptRecord;
  channel: string;
}

type Prediction = Awaited<ReturnType<Activities['predictTarget']>>;
type SentResponse = Extract<CreateVerificationOutcome, { kind: 'sent' }>['response'];
type RefusedSend = Extract<CreateVerificationOutcome, { kind: 'refused' }>;
/** Prelude's record of the window's checks (see VerificationWindow's #checksAtPrelude). */
type CheckHistoryCount = Extract<CheckHistory, { kind: 'read' }>;

export class VerificationWindow {
  readonly openedAt = Date.now();
  readonly expiresAt: number;
  readonly #input: VerificationInput;
  readonly #policy: WindowPolicy;
  readonly #calls: LifecycleCalls;
  readonly #state: VerificationState;
  /** One step at a time: each sees the budget and the outcome the previous one left. */
  readonly #turn = new Turn();
  /** A send (a fallback's included) is accepted and not done: another is refused meanwhile. */
  #sending = false;
  /**
   * The reservation of the send under way, once asked; `granted` once the entity's answer is known;
   * `asker`: who asks it (the send's call and the executions of it so far).
   */
  #reservationUnderWay: ReservationUnderWay | undefined;
  #lastSendAt: number | undefined;
  /** Webhook events already applied: the ingest may deliver one more than once. */
  readonly #appliedReports = new Set<string>();
  /** Attempts a fallback already left: each gets one. */
  readonly #fellBackFrom = new Set<number>();
  /**
   * A check whose every attempt failed after one may have reached Prelude, and no check has been
   * answered since: it may have closed Prelude's window, so no fallback is made (see
   * {@link holdFallbacksWhileCheckUnknownPatch}).
   */
  #checkFateUnknown = false;
  /** Times a check's answer ended {@link #checkFateUnknown}: a fallback held by it may be due. */
  #checkFatesLearned = 0;
  /**
   * Records that reports added, of attempts the window had not recorded, while the send under way
   * had not recorded its own (see {@link claimReportsDuringSendPatch}), oldest first, with the
   * verification the reports named.
   */
  readonly #reportedDuringSend: { record: AttemptRecord; verificationId?: string }[] = [];

  constructor(input: VerificationInput) {
    this.#input = input;
    this.#policy = input.policy;
    this.#calls = lifecycleCalls(input.calls);
    this.expiresAt = this.openedAt + input.policy.windowSeconds * 1000;
    this.#state = {
      windowId: workflowInfo().workflowId,
      target: input.target,
      targetKey: input.targetKey,
      outcome: 'open',
      attempts: [],
      sendsUsed: 0,
      sendsLeft: input.policy.maxSends,
      checksUsed: 0,
      checksLeft: input.policy.maxChecks,
      openedAt: iso(this.openedAt),
      expiresAt: iso(this.expiresAt),
      policy: input.policy,
    };
  }

  get isOpen(): boolean {
    return this.#state.outcome === 'open';
  }

  /** Whether an attempt may be resent on another channel (`fallbackChannels`). */
  get fallsBack(): boolean {
    return (this.#policy.fallbackChannels ?? []).length > 0;
  }

  /** The window as it stands (a copy: callers may keep it). */
  snapshot(): VerificationState {
    return {
      ...this.#state,
      attempts: this.#state.attempts.map((a) => ({ ...a })),
      nextResendAt: isoOrUndefined(this.#nextResendAt()),
    };
  }

  // --- Sends -----------------------------------------------------------------------------------

  /** A send's rules, checked before it is accepted: a refused send never reaches the history. */
  validateSend(request: SendCodeRequest): void {
    this.#refuseReusedKey(request.idempotency);
    this.#refuseIfClosed();
    if (this.#state.sendsLeft === 0) {
      throw refusal(rejection.tooManyAttempts, `all ${this.#policy.maxSends} sends of this window are used`);
    }
    if (this.#sending) throw refusal(rejection.prematureRetry, 'a send is already in progress', 1);
    const next = this.#nextResendAt();
    if (next !== undefined && Date.now() < next) {
      throw refusal(
        rejection.prematureRetry,
        'the resend cooldown has not elapsed',
        wholeSeconds(next - Date.now()),
      );
    }
  }

  /** The first send opens the window; later ones resend in it. */
  async send(request: SendCodeRequest): Promise<SendCodeResult> {
    this.#bindKey(request.idempotency);
    // Before the first await: a second send's validator, run in this same task, refuses it.
    this.#sending = true;
    try {
      return await this.#turn.run(() =>
        this.#countedAtTheLimits(
          () => (this.#state.sendsUsed === 0 ? this.#open(request) : this.#resend(request)),
          request.guard,
        ),
      );
    } finally {
      this.#sendDone();
    }
  }

  /**
   * The send under way recorded what it sent: a report of an attempt not recorded from now on is
   * Prelude's own (an automatic fallback), whatever came before.
   */
  #sendDone(): void {
    this.#sending = false;
    this.#reportedDuringSend.length = 0;
  }

  /**
   * Runs a send, then tells the target's limits entity how many codes it sent where the entity could
   * not count them itself: its granted reservation counts one code, and the window counts each
   * attempt whose answer was lost but that Prelude applied. Only a send that met lost answers pays
   * for the call. `guard`: the send guards' grant of a user's send (none for a fallback), whose
   * shard is told too.
   */
  async #countedAtTheLimits<T>(send: () => Promise<T>, guard?: GuardGrantRef): Promise<T> {
    const sendsBefore = this.#state.sendsUsed;
    this.#reservationUnderWay = undefined;
    try {
      return await send();
    } finally {
      const codes = this.#state.sendsUsed - sendsBefore;
      // Set by the send meanwhile (TypeScript still sees the `undefined` assigned above).
      const reservation = this.#reservationUnderWay as ReservationUnderWay | undefined;
      // Checked before the call, not in it: a send with nothing to tell (nearly all) awaits nothing.
      // The granted reservation counted one code.
      if (reservation && codes > 0 && !(codes === 1 && reservation.granted)) {
        await this.#tellCodesSent(reservation, codes, guard);
      }
    }
  }

  /** Tells the target's limits that `reservation`'s send sent `codes` in all (and its shard, `grant`). */
  async #tellCodesSent(
    reservation: ReservationUnderWay,
    codes: number,
    grant: GuardGrantRef | undefined,
  ): Promise<void> {
    if (!patched(tellCodesSentPatch)) return;
    // The send guards' grant counted one code too (a send of earlier code carries none).
    const guard = codes > 1 ? grant : undefined;
    try {
      await this.#calls.entity.tellCodesSent({
        targetKey: this.#input.targetKey,
        reservationId: reservation.reservationId,
        codes,
        ...(guard ? { guard } : {}),
      });
      // What the window shows of the target's usage: the granted reservation's answer counted one.
      const usage = this.#state.targetUsage;
      if (reservation.granted && usage) {
        const more = codes - 1;
        this.#state.targetUsage = {
          ...usage,
          sendsUsed: usage.sendsUsed + more,
          sendsLeft: Math.max(0, usage.sendsLeft - more),
        };
      }
    } catch (error) {
      // The window's own count stands; the target's limits undercount until their period ends.
      log.warn('telling the target’s limits of codes sent failed', { error: describe(error) });
    }
  }

  async #open(request: SendCodeRequest): Promise<SendCodeResult> {
    const channel = requestedChannel(request);
    try {
      // Neither waits for the other; the reservation is asked first (replayed histories expect the
      // calls in this order). The create goes with it unless the verdict decides whether it goes at
      // all (`enforce`); a verdict only recorded (`monitor`) is asked in that same call. A send the
      // limits refuse has then asked Watch for nothing, which only a target over its windows for the
      // period costs.
      const { fraudMode } = this.#policy;
      const { predictWithSend: asked, reserveWithCreate } = this.#input.calls;
      // Only where there is such a call: a window that reserves apart asks Watch apart too.
      const predictWithSend = fraudMode === 'monitor' && asked === true && reserveWithCreate === true;
      const reserving = this.#reserve(request, {
        opensWindow: true,
        mayCreate: fraudMode !== 'enforce',
        withPredict: predictWithSend,
      });
      // A predict of its own runs beside; without one (the default) nothing is joined, one await less.
      const [{ reservation, created }, prediction] =
        fraudMode === 'off' || predictWithSend
          ? [await reserving, undefined]
          : await Promise.all([reserving, this.#predict(request)]);
      if (!reservation.granted) {
        this.#close('rate_limited');
        throw targetRateLimited(reservation);
      }
      if (this.#policy.fraudMode === 'enforce' && prediction?.prediction === 'suspicious') {
        this.#close('blocked', { reason: 'suspicious', riskFactors: prediction.risk_factors });
        return this.#sendResult('blocked');
      }
      const { value: outcome, uncertainAttempts } =
        created ?? (await this.#createAfter(reservation, request));
      if (outcome.kind === 'refused') {
        return await this.#afterRefusedSend(outcome, uncertainAttempts, 'initial', 'success', channel);
      }
      if (outcome.response.status === 'retry') {
        // Prelude already had a window open for this target: either an earlier attempt of this
        // send opened it (its answer lost: a send of this window), or a window of ours closed
        // before Prelude's did and this send continues Prelude's window. Either way, to the caller
        // this window is a new one.
        // With no other window of this target in the period (the limits entity says so), the
        // earlier send can only have been this window's, lost to a crash. Prelude's record, where
        // it can be read, says how many of the lost attempts went out (`retry`: at least one
        // before the answered one, or the record is behind).
        const reached = await this.#lostSendsThatReached({
          verificationId: outcome.response.id,
          lost: uncertainAttempts,
          answered: 1,
          atLeast: 2,
        });
        const ownEarlierSend = uncertainAttempts > 0 || this.#state.targetUsage?.windowsUsed === 1;
        if (ownEarlierSend) {
          // The first lost attempt opened Prelude's window; the others resent in it.
          this.#recordInferredSend('initial', 'success', channel);
          this.#countLostResends((reached ?? uncertainAttempts) - 1, channel);
        }
        this.#recordSend(outcome.response, ownEarlierSend ? 'user_retry' : 'initial', { channel });
        return this.#sendResult('success');
      }
      return this.#recordSend(outcome.response, 'initial', { channel });
    } catch (error) {
      const { failure, uncertainAttempts } = failedAttempts(error);
      if (this.#sendFailed(uncertainAttempts, 'initial', channel)) {
        throw asUpdateFailure(failure);
      }
      const nothingSent = await this.#givenBackUnsent(error, uncertainAttempts);
      // A window whose first send failed has nothing to check; closing it lets the next start
      // open a fresh one instead of resending into a window Prelude never opened.
      this.#close('failed', { failure: describe(failure) });
      throw nothingSent ? unsentSendFailure(failure) : asUpdateFailure(failure);
    }
  }

  async #resend(request: SendCodeRequest): Promise<SendCodeResult> {
    const channel = requestedChannel(request);
    try {
      const { reservation, created } = await this.#reserve(request, { opensWindow: false });
      if (!reservation.granted) throw targetRateLimited(reservation);
      const { value: outcome, uncertainAttempts } =
        created ?? (await this.#createAfter(reservation, request));
      if (outcome.kind === 'refused') {
        return await this.#afterRefusedSend(outcome, uncertainAttempts, 'user_retry', 'retry', channel);
      }
      if (outcome.response.status === 'retry') {
        const reached = await this.#lostSendsThatReached({
          verificationId: outcome.response.id,
          lost: uncertainAttempts,
          answered: 1,
        });
        this.#countLostResends(reached ?? uncertainAttempts, channel);
      }
      return this.#recordSend(outcome.response, 'user_retry', { channel });
    } catch (error) {
      const { failure, uncertainAttempts: lost } = failedAttempts(error);
      // Prelude's record, where it can be read, says how many of the lost attempts sent a code.
      const reached = await this.#lostSendsThatReached({
        verificationId: this.#state.verificationId,
        lost,
        answered: 0,
      });
      const uncertainAttempts = reached ?? lost;
      if (this.#sendFailed(uncertainAttempts, 'user_retry', channel, reached)) {
        throw asUpdateFailure(failure);
      }
      throw (await this.#givenBackUnsent(error, uncertainAttempts))
        ? unsentSendFailure(failure)
        : asUpdateFailure(failure);
    }
  }

  /**
   * A send's call failed with no attempt that may have reached Prelude: gives its reservation back
   * (see `#giveBack`). Answers whether the send sent nothing: only then is its reservation no longer
   * counted. A refusal of the window's own (the limits said no) has no reservation to give back.
   */
  async #givenBackUnsent(
    error: unknown,
    uncertainAttempts: number,
    patchId = giveBackUnsentSendPatch,
  ): Promise<boolean> {
    if (!(error instanceof AttemptsFailed) || uncertainAttempts > 0) return false;
    return this.#giveBack(patchId);
  }

  /**
   * Gives the reservation of the send under way, which sent nothing, back to the target's limits,
   * behind the `patched()` marker `patchId`. The entity first makes sure that no execution of the
   * call the window does not know of (a task lost to a crash) asked it. Answers whether it took the
   * reservation back; a give-back that fails leaves the send counted, the side of fewer sends.
   */
  async #giveBack(patchId: string): Promise<boolean> {
    const reservation = this.#reservationUnderWay;
    if (!reservation || !patched(patchId)) return false;
    const { reservationId, opensWindow, asker } = reservation;
    try {
      const { nothingSent } = await this.#calls.entity.giveBackSend({
        targetKey: this.#input.targetKey,
        reservationId,
        opensWindow,
        asker: { call: asker.call, known: [...asker.known] },
      });
      return nothingSent;
    } catch (giveBackError) {
      log.warn('giving a send that sent nothing back to the target’s limits failed', {
        error: describe(giveBackError),
      });
      return false;
    }
  }

  /**
   * Every attempt of a send failed, and `uncertainAttempts` may have reached Prelude: the first of
   * them may have sent a code (a first send's, opening Prelude's window), while Prelude's resend
   * delay most likely refused the others. The window counts that send, marked `inferred`, and stays
   * open, so that the caller's next send resends in it as in Prelude's window; a delivery webhook
   * for the code, if one went out, names the attempt. The caller still hears the failure. Windows
   * started by 0.1.0 counted nothing, and closed `failed` on a first send. Answers whether it counted
   * the send.
   * Where Prelude is configured to resend without waiting (its delay shorter than the pauses between
   * attempts), each of the others resent a code in that window too, and each counts.
   */
  #sendFailed(
    uncertainAttempts: number,
    trigger: AttemptRecord['trigger'],
    channel?: string,
    codesAtPrelude?: number,
  ): boolean {
    if (uncertainAttempts === 0 || !patched(countLostSendPatch)) return false;
    this.#recordInferredSend(trigger, 'success', channel);
    const codes = codesAtPrelude ?? this.#codesOfUnansweredAttempts(uncertainAttempts);
    for (let code = 2; code <= codes; code += 1) this.#recordInferredSend('user_retry', 'success', channel);
    return true;
  }

  /**
   * The codes that a call's attempts whose answers were lost sent, when no answer of Prelude's
   * followed them: the first opened or resent in Prelude's window; the others met its resend delay,
   * unless it resends at once (see {@link #preludeResendsAtOnce}).
   */
  #codesOfUnansweredAttempts(lostAttempts: number): number {
    return this.#preludeResendsAtOnce() ? lostAttempts : Math.min(lostAttempts, 1);
  }

  /**
   * Whether Prelude's resend delay, as configured, is shorter than the shortest pause between a
   * call's attempts. Windows whose input does not say (started by earlier code, or with the delay
   * not configured) take it to be longer.
   */
  #preludeResendsAtOnce(): boolean {
    const delaySeconds = this.#input.calls.preludeResendDelaySeconds;
    return delaySeconds !== undefined && delaySeconds * 1000 < lifecyclePauseMs(1);
  }

  /**
   * Leave for the next send, with its create in the same call when the window makes them together
   * (`reserveWithCreate`) and `mayCreate` (default), and Watch's verdict in it too `withPredict`;
   * `created` is absent when the create is still to be made.
   */
  async #reserve(
    request: Pick<CreateVerificationInput, 'signals' | 'options' | 'dispatchId'>,
    {
      opensWindow,
      mayCreate = true,
      withPredict = false,
    }: { opensWindow: boolean; mayCreate?: boolean; withPredict?: boolean },
  ): Promise<{ reservation: ReservationOutcome; created?: Attempted<CreateVerificationOutcome> }> {
    if (mayCreate && this.#input.calls.reserveWithCreate) {
      return this.#reserveAndCreate(request, opensWindow, withPredict);
    }
    return { reservation: await this.#reserveSend(opensWindow) };
  }

  /**
   * Leave from the target's limits entity for the next send (and a window, for the first): the
   * limits span every window of the target. The reservation is named after the send, so a retried
   * one, or one whose send then failed, is counted once. It says who asks (this send, in this
   * workflow task's run), so that a send whose create then sends nothing can be given back.
   */
  async #reserveSend(opensWindow: boolean): Promise<ReservationOutcome> {
    const execution = Date.now();
    const { call } = this.#asker([execution]);
    const send = this.#reservation(opensWindow, { call, known: [execution] });
    return this.#noteUsage(
      await this.#calls.entity.reserveTargetSend({ ...send, asker: { call, execution, known: [] } }),
    );
  }

  /** Who asks the send's reservation: its call (the update's ID), knowing these executions of it. */
  #asker(known: number[]): SendAsker {
    return { call: currentUpdateInfo()?.id ?? 'fallback', known };
  }

  /** The reservation of the next send: named after it, so that it is counted once. */
  #reservation(opensWindow: boolean, asker: SendAsker): ReserveTargetSendInput {
    const reservationId = `${workflowInfo().runId}:${this.#state.sendsUsed + 1}`;
    this.#reservationUnderWay = { reservationId, opensWindow, granted: false, asker };
    return { targetKey: this.#input.targetKey, reservationId, opensWindow, limits: this.#input.limits };
  }

  #noteUsage(reservation: ReservationOutcome): ReservationOutcome {
    if (this.#reservationUnderWay) this.#reservationUnderWay.granted = reservation.granted;
    if (reservation.granted) this.#state.targetUsage = reservation.usage;
    return reservation;
  }

  /**
   * The reservation and, when granted, the create, in one call made attempt by attempt like the
   * create alone (a retried attempt's reservation is the same one, counted once); Watch's verdict in
   * it too `withPredict`.
   */
  async #reserveAndCreate(
    request: Pick<CreateVerificationInput, 'signals' | 'options' | 'dispatchId'>,
    opensWindow: boolean,
    withPredict: boolean,
  ): Promise<{ reservation: ReservationOutcome; created?: Attempted<CreateVerificationOutcome> }> {
    const create = this.#createInput(request);
    const predict = withPredict ? this.#predictInput(request) : undefined;
    // Who asks: this send, in the workflow task that runs the attempt (a task a crash cut short ran
    // it at another time), knowing its earlier attempts.
    const { call, known } = this.#asker([]);
    const send = this.#reservation(opensWindow, { call, known });
    // The most earlier runs a failed attempt's reservation named: counted if every attempt fails.
    let lostRunsOfFailedAttempts = 0;
    // Every attempt failed: AttemptsFailed, which tells the send how many may have reached Prelude.
    const { value, uncertainAttempts } = await attemptLifecycleCall(async () => {
      const asker = { call, execution: Date.now(), known: [...known] };
      known.push(asker.execution);
      const reservation = { ...send, asker };
      try {
        return await this.#calls.send.reserveAndCreateVerification(
          predict ? { reservation, create, predict } : { reservation, create },
        );
      } catch (error) {
        lostRunsOfFailedAttempts = Math.max(lostRunsOfFailedAttempts, earlierExecutionsIn(error));
        throw error;
      }
    }).catch((error: unknown) => {
      throw this.#withLostRuns(error, lostRunsOfFailedAttempts);
    });
    this.#noteUsage(value.reservation);
    if (value.predicted) this.#notePredicted(value.predicted);
    const lostRuns = value.reservation.granted ? this.#lostRunsCounted(value.reservation) : 0;
    return {
      reservation: value.reservation,
      created: value.created && { value: value.created, uncertainAttempts: uncertainAttempts + lostRuns },
    };
  }

  /**
   * Runs of this send in workflow tasks that a crash cut short, after they reached the target's
   * limits: each may have sent a code, whose answer no one saw. Windows started by 0.1.0 counted none
   * (the marker is written only where this counts one).
   */
  #lostRunsCounted({ earlierExecutions = 0 }: { earlierExecutions?: number }): number {
    return earlierExecutions > 0 && patched(countLostTaskSendsPatch) ? earlierExecutions : 0;
  }

  /**
   * A send whose every attempt failed, with the earlier runs of it that its reservation named counted
   * among the attempts that may have reached Prelude: a crash cut each of them short, perhaps after
   * its code went out. Windows started by earlier code counted none (the marker is written only
   * where this counts one).
   */
  #withLostRuns(error: unknown, lostRuns: number): unknown {
    if (!(error instanceof AttemptsFailed) || lostRuns === 0 || !patched(countEveryLostTaskSendPatch)) {
      return error;
    }
    return new AttemptsFailed(error.lastFailure, error.uncertainAttempts + lostRuns);
  }

  /**
   * Watch's verdict on the target, recorded in the state. Advisory: when Watch cannot be reached the
   * send goes on, recorded as `unavailable`.
   */
  async #predict(request: SendCodeRequest): Promise<Prediction | undefined> {
    try {
      const prediction = await this.#calls.predict.predictTarget(this.#predictInput(request));
      this.#state.prediction = prediction.prediction;
      return prediction;
    } catch (error) {
      this.#predictFailed(describe(error));
      return undefined;
    }
  }

  /** Watch's verdict as the send's call answered it (`predictWithSend`). */
  #notePredicted(predicted: NonNullable<ReserveAndCreateOutcome['predicted']>): void {
    if ('prediction' in predicted) this.#state.prediction = predicted.prediction.prediction;
    else this.#predictFailed(predicted.failure);
  }

  #predictFailed(error: unknown): void {
    log.warn('Watch predict failed; sending without a prediction', { error });
    this.#state.prediction = 'unavailable';
  }

  #predictInput({ signals, dispatchId }: Pick<CreateVerificationInput, 'signals' | 'dispatchId'>) {
    return { target: this.#state.target, correlationId: this.#state.windowId, signals, dispatchId };
  }

  /**
   * Asks Prelude to send a code. When every attempt failed: AttemptsFailed, which tells the send how
   * many may have reached Prelude (see {@link #sendFailed}).
   */
  async #create({
    signals,
    options,
    dispatchId,
  }: Pick<CreateVerificationInput, 'signals' | 'options' | 'dispatchId'>): Promise<
    Attempted<CreateVerificationOutcome>
  > {
    const input = this.#createInput({ signals, options, dispatchId });
    // Each attempt dated by its own workflow task (see CreateVerificationInput.taskStartedAt).
    return attemptLifecycleCall(() =>
      this.#calls.create.createVerification({ ...input, taskStartedAt: Date.now() }),
    );
  }

  /**
   * The create of a send whose reservation was asked apart (`enforce`'s first send, and windows of
   * earlier code), counting the earlier runs of the send that the reservation named as attempts
   * whose answers were lost, whether the create then succeeds or fails (see {@link #withLostRuns}).
   */
  async #createAfter(
    reservation: ReservationOutcome,
    request: Pick<CreateVerificationInput, 'signals' | 'options' | 'dispatchId'>,
  ): Promise<Attempted<CreateVerificationOutcome>> {
    const lostRuns = reservation.granted ? (reservation.earlierExecutions ?? 0) : 0;
    const attempted = await this.#create(request).catch((error: unknown) => {
      throw this.#withLostRuns(error, lostRuns);
    });
    if (lostRuns === 0 || !patched(countEveryLostTaskSendPatch)) return attempted;
    return { ...attempted, uncertainAttempts: attempted.uncertainAttempts + lostRuns };
  }

  #createInput({
    signals,
    options,
    dispatchId,
  }: Pick<CreateVerificationInput, 'signals' | 'options' | 'dispatchId'>): CreateVerificationInput {
    return { target: this.#state.target, correlationId: this.#state.windowId, signals, options, dispatchId };
  }

  /**
   * Prelude refused the send. Refused as premature after an attempt that may have reached it, it
   * counts a send from that attempt, whose answer was lost: the code went out, and the window counts
   * it too. Refused as `too_many_attempts` after such attempts, they are what filled Prelude's
   * window: each sent the code (the user has it), each counts, and the window offers no more sends.
   * (Found by the chaos run: a worker killed five times in a row just after a send's create reached
   * Prelude, and the sixth run told the user 429 with five codes on the phone.) Refused with no
   * such attempt, the send sent nothing: its reservation goes back to the target's limits, and the
   * caller hears the refusal.
   */
  async #afterRefusedSend(
    refused: RefusedSend,
    uncertainAttempts: number,
    trigger: AttemptRecord['trigger'],
    status: string,
    channel: string | undefined,
  ): Promise<SendCodeResult> {
    // Prelude's record, where it can be read, says how many of the lost attempts sent a code: none,
    // and the refusal met this send alone, which sent nothing.
    const lostAttemptsSent = async () =>
      (await this.#lostSendsThatReached({
        verificationId: this.#state.verificationId,
        lost: uncertainAttempts,
        answered: 0,
      })) ?? uncertainAttempts;
    if (uncertainAttempts > 0 && refused.code === 'premature_retry') {
      uncertainAttempts = await lostAttemptsSent();
      if (uncertainAttempts > 0) return this.#recordInferredSend(trigger, status, channel);
    }
    if (uncertainAttempts > 0 && refused.code === 'too_many_attempts' && patched(fullAfterLostSendsPatch)) {
      uncertainAttempts = await lostAttemptsSent();
      if (uncertainAttempts > 0) {
        this.#recordInferredSend(trigger, status, channel);
        this.#countLostResends(uncertainAttempts - 1, channel);
        this.#noteSendsUsedUp(refused.code);
        return this.#sendResult(status);
      }
    }
    this.#noteSendsUsedUp(refused.code);
    if (uncertainAttempts === 0) await this.#giveBack(giveBackRefusedSendPatch);
    throw refusal(
      refused.code,
      `Prelude refused the send: ${refused.message}`,
      wholeSeconds(refused.retryAfterMs),
    );
  }

  /** Prelude's `too_many_attempts`: its window takes no more sends, so ours offers none. */
  #noteSendsUsedUp(code: string): void {
    if (code === 'too_many_attempts') this.#state.sendsLeft = 0;
  }

  /**
   * Attempts of a send, lost before Prelude answered `retry`: each that reached Prelude resent the
   * code. The answer shows Prelude's resend delay shorter than our pauses between attempts (a few
   * hundred milliseconds), so none of them met it; as with a check's lost attempts, each counts.
   * Windows started by 0.1.0 counted none of them (the marker is written only where this counts one).
   */
  #countLostResends(lostAttempts: number, channel: string | undefined): void {
    if (lostAttempts <= 0 || !patched(countEachLostSendPatch)) return;
    for (let i = 0; i < lostAttempts; i += 1) this.#recordInferredSend('user_retry', 'success', channel);
  }

  /**
   * Records a send Prelude made whose answer never reached us (see `#afterRefusedSend`, `#open`), on
   * `channel` when the send asked for one: Prelude's answer, which told the channel otherwise, is lost.
   */
  #recordInferredSend(trigger: AttemptRecord['trigger'], status: string, channel?: string): SendCodeResult {
    const asked = channel !== undefined && patched(inferredSendChannelPatch) ? { channel } : {};
    this.#addAttempt({ trigger, sentAt: this.#countSend(), inferred: true, ...asked });
    return this.#sendResult(status);
  }

  #recordSend(
    response: SentResponse,
    trigger: AttemptRecord['trigger'],
    requested: { channel?: string; switchedFrom?: string } = {},
  ): SendCodeResult {
    if (response.status === 'blocked') {
      this.#close('blocked', {
        verificationId: response.id,
        reason: response.reason,
        riskFactors: response.risk_factors,
      });
      return this.#sendResult('blocked');
    }
    const sentAt = this.#countSend();
    const state = this.#state;
    state.method = response.method;
    state.channels = response.channels;
    state.reason = response.reason;
    state.riskFactors = response.risk_factors;
    this.#addAttempt(
      {
        trigger,
        sentAt,
        // Prelude plans a channel sequence and moves along it with each attempt of the window.
        channel:
          requested.channel ??
          response.channels?.[Math.min(state.sendsUsed - 1, response.channels.length - 1)] ??
          (response.method === 'email' ? 'email' : undefined),
        ...(requested.switchedFrom ? { switchedFrom: requested.switchedFrom } : {}),
      },
      response.id,
    );
    if (state.verificationId !== response.id) {
      state.verificationId = response.id;
      upsertSearchAttributes([{ key: verificationIdSearchAttribute, value: response.id }]);
    }
    return this.#sendResult(response.status);
  }

  /**
   * Adds the record of a code the window sent, in `verificationId` when its answer named one. A
   * report of it that came first, while the send was under way, already added a record: the send's
   * takes it over, keeping its place, Prelude's attempt ID and the channel Prelude reported.
   */
  #addAttempt(attempt: Omit<AttemptRecord, 'number'>, verificationId?: string): void {
    const attempts = this.#state.attempts;
    const known = verificationId ?? this.#state.verificationId;
    const at = this.#reportedDuringSend.findIndex(
      (reported) =>
        known === undefined || reported.verificationId === undefined || reported.verificationId === known,
    );
    if (at >= 0 && patched(claimReportsDuringSendPatch)) {
      const [{ record }] = this.#reportedDuringSend.splice(at, 1) as [{ record: AttemptRecord }];
      const { number, channel, attemptId, deliveryStatus, deliveryUpdatedAt } = record;
      attempts[attempts.indexOf(record)] = {
        ...attempt,
        number,
        ...(channel ? { channel } : {}),
        attemptId,
        deliveryStatus,
        deliveryUpdatedAt,
      };
      return;
    }
    attempts.push({ number: attempts.length + 1, ...attempt });
  }

  /** Counts a send against the window's budget and starts its cooldown; returns its ISO time. */
  #countSend(): string {
    this.#lastSendAt = Date.now();
    this.#state.sendsUsed += 1;
    this.#state.sendsLeft = Math.max(0, this.#policy.maxSends - this.#state.sendsUsed);
    return iso(this.#lastSendAt);
  }

  /** When a resend is accepted; a closed window, or one with no send left, takes none. */
  #nextResendAt(): number | undefined {
    return this.#lastSendAt === undefined || this.#state.sendsLeft === 0 || !this.isOpen
      ? undefined
      : this.#lastSendAt + this.#policy.resendCooldownSeconds * 1000;
  }

  #sendResult(status: string): SendCodeResult {
    const state = this.#state;
    return {
      status,
      windowId: state.windowId,
      verificationId: state.verificationId,
      method: state.method,
      channels: state.channels,
      reason: state.reason,
      riskFactors: state.riskFactors,
      sendsUsed: state.sendsUsed,
      expiresAt: state.expiresAt,
      nextResendAt: isoOrUndefined(this.#nextResendAt()),
    };
  }

  // --- Checks ----------------------------------------------------------------------------------

  /** A check's rules, checked before it is accepted. */
  validateCheck({ code, idempotency }: CheckCodeRequest): void {
    this.#refuseReusedKey(idempotency);
    if (typeof code !== 'string' || !codePattern.test(code)) {
      throw refusal(rejection.invalidCode, 'a code is 4 to 8 letters or digits');
    }
    // Closed, whatever closed it, reads exactly like no window at all: the answer must not tell
    // a caller how a target's last window ended.
    if (!this.isOpen) throw refusal(rejection.windowClosed, 'no verification window is open');
    if (this.#state.sendsUsed === 0)
      throw refusal(rejection.windowClosed, 'no code has been sent in this window');
  }

  /** Checks a code, in its turn. */
  async check({ code, idempotency }: CheckCodeRequest): Promise<CheckCodeResult> {
    // Bound before waiting for its turn, so that a concurrent request reusing the key is refused.
    this.#bindKey(idempotency);
    return this.#turn.run(async () => {
      // A closed window answers like no window at all, whatever closed it.
      if (!this.isOpen) return this.#answerCheck(idempotency, 'expired_or_not_found');
      let checked: Attempted<CheckVerificationOutcome>;
      try {
        checked = await attemptLifecycleCall(() =>
          this.#calls.check.checkVerification({ target: this.#state.target, code }),
        );
      } catch (error) {
        if (!(error instanceof AttemptsFailed)) throw asUpdateFailure(error);
        // Only an attempt whose fate is unknown may have spent a check; an error answer did not.
        if (error.uncertainAttempts > 0) {
          const history = await this.#checksAtPrelude(code);
          if (history) return this.#judgeLostCheck(history, code, idempotency, error.lastFailure);
          this.#rememberUncertainCheck(code, error.uncertainAttempts);
        }
        throw asUpdateFailure(error.lastFailure);
      }
      // A wrong code answered after lost attempts: how many of them Prelude judged is in its record.
      const history =
        checked.uncertainAttempts > 0 && isJudgedWrong(checked.value)
          ? await this.#checksAtPrelude(code)
          : undefined;
      return this.#judgeCheck(checked.value, checked.uncertainAttempts, code, idempotency, history);
    });
  }

  /**
   * Prelude's own count of the window's checks, from its History API, or undefined where it cannot
   * be had: not a phone verification, no verification ID yet, no record, or an account that cannot
   * read it. Not read while an earlier check of another code is of unknown fate (its record was
   * unreadable then): the record does not say which code a check was, so the window counts by its
   * rules.
   */
  async #checksAtPrelude(code: string): Promise<CheckHistoryCount | undefined> {
    const { target, verificationId, uncertainCodes } = this.#state;
    if (target.type !== 'phone_number' || verificationId === undefined) return undefined;
    const hash = this.#codeHash(code);
    if (Object.keys(uncertainCodes ?? {}).some((other) => other !== hash)) return undefined;
    if (!patched(readChecksFromHistoryPatch)) return undefined;
    return this.#preludeRecord(this.#calls.history, verificationId, 'check');
  }

  /**
   * Prelude's record of verification `verificationId`, read through `reader` after a lost `what`'s
   * answer; undefined where it cannot be read (no record, an account that cannot read it, every
   * attempt of the read failed), and the window's rules count the lost `what` then.
   */
  async #preludeRecord(
    reader: LifecycleCalls['history'],
    verificationId: string,
    what: 'check' | 'send',
  ): Promise<CheckHistoryCount | undefined> {
    try {
      const history = await reader.readCheckHistory({ verificationId });
      if (history.kind === 'read') return history;
      log.warn(`Prelude's history is unavailable: a lost ${what} is counted by the window's rules`, {
        windowId: this.#state.windowId,
      });
    } catch {
      // Unreadable for now (after its retries): the window's rules count it, as without the record.
    }
    return undefined;
  }

  /**
   * How many of a send's `lost` attempts (their answers lost) Prelude carried out, from its record
   * of verification `verificationId`: the sends it made for its caller, less those the window
   * counted before this send and the `answered` attempt of it Prelude answered (0 or 1), at most
   * `lost`. Undefined where the record cannot be read (the window's rules count then): not a phone
   * verification, no ID, no record, an account that cannot read it, attempts it cannot tell apart;
   * and where it shows fewer sends than `atLeast` (by default what the window counted before and the
   * answered attempt): a record behind, or an earlier send the rules counted that never went out.
   * Either way the window's count stays on the side of more sends, as by its rules.
   */
  async #lostSendsThatReached({
    verificationId,
    lost,
    answered,
    atLeast,
  }: {
    verificationId: string | undefined;
    lost: number;
    answered: 0 | 1;
    atLeast?: number;
  }): Promise<number | undefined> {
    if (lost <= 0 || this.#state.target.type !== 'phone_number' || verificationId === undefined) {
      return undefined;
    }
    if (!patched(countSendsFromHistoryPatch)) return undefined;
    const record = await this.#preludeRecord(this.#calls.sendHistory, verificationId, 'send');
    if (record?.sends === undefined) return undefined;
    // This send's own sends are recorded once the count is known: the window's count is the earlier ones.
    const sendsBefore = this.#state.sendsUsed;
    if (record.sends < (atLeast ?? sendsBefore + answered)) return undefined;
    return Math.min(lost, record.sends - sendsBefore - answered);
  }

  /**
   * The checks the window knows for sure before `code`'s: its count, less what it counted for
   * earlier attempts of this code whose fate was unknown. Forgets those, as the record now counts them.
   */
  #checksKnownBefore(code: string): number {
    const hash = this.#codeHash(code);
    const counted = this.#state.uncertainCodes?.[hash] ?? 0;
    if (this.#state.uncertainCodes) delete this.#state.uncertainCodes[hash];
    return this.#state.checksUsed - counted;
  }

  /**
   * A check whose every attempt failed, some after they may have reached Prelude, answered by
   * Prelude's record: right if it judged a check right (no other code is of unknown fate, see
   * {@link #checksAtPrelude}), wrong if it judged more checks than the window knew of, and otherwise
   * never judged: the call's failure stands, with nothing spent.
   */
  #judgeLostCheck(
    history: CheckHistoryCount,
    code: string,
    idempotency: IdempotencyBinding | undefined,
    lastFailure: unknown,
  ): CheckCodeResult {
    this.#learnCheckFate();
    const known = this.#checksKnownBefore(code);
    this.#setChecksUsed(Math.max(history.checks, known));
    if (history.rightChecks > 0) {
      this.#close('verified');
      return this.#answerCheck(idempotency, 'success');
    }
    if (history.checks <= known) {
      // Remembered with no check counted: were the record late, a retry of this code that finds
      // Prelude's window closed is still read as its success (see #judgeCheck).
      (this.#state.uncertainCodes ??= {})[this.#codeHash(code)] = 0;
      throw asUpdateFailure(lastFailure);
    }
    if (this.#state.checksLeft === 0) this.#close('max_checks');
    return this.#answerCheck(idempotency, 'failure');
  }

  /** Prelude answered a check, or its record was read: a fallback held while one was unknown may go. */
  #learnCheckFate(): void {
    if (this.#checkFateUnknown) {
      this.#checkFateUnknown = false;
      this.#checkFatesLearned += 1;
    }
  }

  /** Reads Prelude's answer to a check by its lifecycle rules, and closes the window if it ends it. */
  #judgeCheck(
    outcome: CheckVerificationOutcome,
    uncertainAttempts: number,
    code: string,
    idempotency: IdempotencyBinding | undefined,
    history?: CheckHistoryCount,
  ): CheckCodeResult {
    // Prelude answered: its window is open (a check was judged in it) or closed (this says so).
    this.#learnCheckFate();
    if (outcome.kind === 'refused') {
      // Prelude's refusal is the truth: every check of its window is spent, whatever the window
      // counted (a check kept for a retry, or lost attempts it could not count).
      this.#spendChecks(this.#policy.maxChecks);
      this.#close('max_checks');
      throw refusal(rejection.tooManyChecks, `Prelude refused the check: ${outcome.message}`);
    }
    const { status } = outcome.response;
    const counted = this.#state.uncertainCodes?.[this.#codeHash(code)];
    const earlierMayHaveReached = uncertainAttempts > 0 || counted !== undefined;
    if (status === 'expired_or_not_found' && earlierMayHaveReached && Date.now() < this.expiresAt) {
      // Prelude closes a window early only on a right code. Our window is inside its lifetime
      // with checks left, so an earlier check of this very code (a retried attempt, or a check
      // whose every attempt failed after one may have reached Prelude), whose answer was lost,
      // succeeded. Prelude counted that one check, and none for this one, which met its window
      // closed: a code remembered with its lost attempts counted gives back all but one of them.
      this.#spendChecks(counted !== undefined && patched(countEachLostCheckPatch) ? 1 - counted : 1);
      this.#close('verified', {
        inferred: 'a retried check found Prelude’s window closed: its earlier attempt succeeded',
      });
      return this.#answerCheck(idempotency, 'success');
    }
    if (status === 'expired_or_not_found') {
      this.#closeOutOfTime();
      return this.#answerCheck(idempotency, 'expired_or_not_found');
    }
    // A wrong code retried after attempts whose fate is unknown was most likely counted by Prelude
    // once for each (the lost attempts and this one): the window counts them, but not into its last
    // check, which only Prelude's word spends (keepLastCheckPatch: a lost attempt cut by a crash may
    // never have reached it). (A right code's earlier attempts cannot have reached Prelude: the
    // first would have succeeded and closed its window.)
    if (status === 'success') {
      this.#spendChecks(1);
      this.#close('verified');
      return this.#answerCheck(idempotency, 'success');
    }
    if (history) {
      // Prelude's record counts this check and each lost attempt it judged, and no other.
      this.#setChecksUsed(Math.max(history.checks, this.#checksKnownBefore(code) + 1));
    } else {
      const lost = this.#lostChecksCounted(uncertainAttempts);
      this.#spendChecks(1 + this.#lostChecksSpent(lost, 1, lost));
    }
    // `failure`, and anything else Prelude may answer (e.g. a PSD2 mismatch), spends a check.
    if (this.#state.checksLeft === 0) this.#close('max_checks');
    return this.#answerCheck(idempotency, 'failure');
  }

  /**
   * Every attempt of a check failed, and `uncertainAttempts` may have reached Prelude: if this code
   * was wrong, each of them spent a check; if it was right, the first closed Prelude's window.
   * Remembered, so that the user's retry of the same code is read as such. The window counts each
   * lost attempt, but keeps a check for that retry, the last one too: the retry's answer tells which
   * it was, and Prelude refuses it if its checks are used up.
   */
  #rememberUncertainCheck(code: string, uncertainAttempts: number): void {
    const lost = this.#lostChecksCounted(uncertainAttempts);
    const before = this.#state.checksUsed;
    // Earlier code kept a check only when more than one was left.
    this.#spendChecks(
      this.#lostChecksSpent(lost, 0, Math.min(lost, Math.max(1, this.#state.checksLeft - 1))),
    );
    const countedByCode = (this.#state.uncertainCodes ??= {});
    const hash = this.#codeHash(code);
    countedByCode[hash] = (countedByCode[hash] ?? 0) + this.#state.checksUsed - before;
    if (this.#state.checksLeft === 0) this.#close('max_checks');
    else if (this.#policy.fallbackChannels?.length && patched(holdFallbacksWhileCheckUnknownPatch)) {
      this.#checkFateUnknown = true;
    }
  }

  /**
   * The checks that `uncertainAttempts` lost attempts of a wrong code spent at Prelude. Windows
   * started by 0.1.0 counted at most one, and replay that (the marker is written only by a check
   * with two lost attempts or more).
   */
  #lostChecksCounted(uncertainAttempts: number): number {
    if (uncertainAttempts <= 1 || !patched(countEachLostCheckPatch)) return Math.min(uncertainAttempts, 1);
    return uncertainAttempts;
  }

  /**
   * Of `lost` checks counted for attempts whose fate is unknown, beside `certain` spent for sure,
   * those the window spends: each, but never its last check since keepLastCheckPatch, which only
   * Prelude's answer spends. `earlier` is what code before it spent; the marker is written only where
   * the two differ.
   */
  #lostChecksSpent(lost: number, certain: number, earlier: number): number {
    const spendable = this.#state.checksLeft - certain;
    const allButLast = Math.min(lost, Math.max(0, spendable - 1));
    if (Math.min(earlier, spendable) === allButLast) return allButLast;
    return patched(keepLastCheckPatch) ? allButLast : earlier;
  }

  #spendChecks(count: number): void {
    this.#setChecksUsed(this.#state.checksUsed + count);
  }

  #setChecksUsed(checks: number): void {
    this.#state.checksUsed = Math.min(this.#policy.maxChecks, checks);
    this.#state.checksLeft = this.#policy.maxChecks - this.#state.checksUsed;
  }

  /** A code as the window remembers it (never in clear in its state). */
  #codeHash(code: string): string {
    return fnv1a(`${this.#state.windowId}:${code.toUpperCase()}`);
  }

  /** A check's answer, bound to its key: a retry gets it again, even once the window has closed. */
  #answerCheck(
    idempotency: IdempotencyBinding | undefined,
    status: CheckCodeResult['status'],
  ): CheckCodeResult {
    const { windowId, verificationId, checksUsed, checksLeft } = this.#state;
    const answer = { status, windowId, verificationId, checksUsed, checksLeft };
    this.#bindKey(idempotency, answer);
    return answer;
  }

  // --- Fallback --------------------------------------------------------------------------------

  /** A delivery report from Prelude's webhooks, applied once. */
  recordDelivery(report: DeliveryStatusReport): void {
    if (this.#appliedReports.has(report.eventId)) return;
    // A late report about an earlier window of the same target (an earlier run) is not ours.
    const { verificationId } = this.#state;
    if (report.verificationId && verificationId && report.verificationId !== verificationId) return;
    this.#appliedReports.add(report.eventId);
    const added = applyDeliveryReport(this.#state, report);
    if (added && this.#sending) {
      this.#reportedDuringSend.push({ record: added, verificationId: report.verificationId });
    }
  }

  /**
   * How far the window's deliveries have come: codes sent, delivery reports taken, and checks whose
   * answer ended a hold on fallbacks. A fallback depends on nothing else, so whoever waits for one
   * looks again whenever this moves.
   */
  deliveryProgress(): number {
    return this.#state.sendsUsed + this.#appliedReports.size + this.#checkFatesLearned;
  }

  /** When, and on which channel, the latest attempt is to be resent; undefined when it is not. */
  fallbackDue(): Fallback | undefined {
    const attempt = this.#state.attempts.at(-1);
    if (!attempt || !this.isOpen || this.#sending || this.#state.sendsLeft === 0) return undefined;
    if (this.#fellBackFrom.has(attempt.number) || this.#checkFateUnknown) return undefined;
    const channel = nextChannel(this.#policy.fallbackChannels ?? [], attempt.channel);
    if (channel === undefined) return undefined;
    const earliest = this.#nextResendAt() ?? Date.now();
    if (attempt.deliveryStatus === 'undeliverable') return { at: earliest, attempt, channel };
    const deliveryTimeoutMs = (this.#policy.deliveryTimeoutSeconds ?? 0) * 1000;
    if (deliveryTimeoutMs > 0 && attempt.deliveryStatus !== 'delivered') {
      return { at: Math.max(earliest, Date.parse(attempt.sentAt) + deliveryTimeoutMs), attempt, channel };
    }
    return undefined;
  }

  /** The fallback due by now, if any. */
  fallbackDueNow(): Fallback | undefined {
    const due = this.fallbackDue();
    return due && due.at <= Date.now() ? due : undefined;
  }

  /** Resends on the next channel. Best effort: a refusal or a failure is logged, and the window goes on. */
  async fallBack(fallback: Fallback): Promise<void> {
    this.#fellBackFrom.add(fallback.attempt.number);
    this.#sending = true;
    try {
      await this.#turn.run(() => this.#countedAtTheLimits(() => this.#fallBackInTurn(fallback)));
    } finally {
      this.#sendDone();
    }
  }

  async #fallBackInTurn({ attempt, channel }: Fallback): Promise<void> {
    // A check or a cancel that came first may have closed the window.
    if (!this.isOpen) return;
    // A check that came first may have left its fate unknown: the attempt is due again once a later
    // check's answer tells (see holdFallbacksWhileCheckUnknownPatch).
    if (this.#checkFateUnknown) {
      this.#fellBackFrom.delete(attempt.number);
      return;
    }
    try {
      const request = {
        options: channel === 'voice' ? { method: 'voice' as const } : { preferred_channel: channel },
      };
      const { reservation, created } = await this.#reserve(request, { opensWindow: false });
      if (!reservation.granted) {
        log.warn('the target’s limits refused the fallback send', {
          retryAfterSeconds: reservation.retryAfterSeconds,
        });
        return;
      }
      const { value: outcome, uncertainAttempts } =
        created ?? (await this.#createAfter(reservation, request));
      if (outcome.kind === 'sent') {
        await this.#countLostFallbacks(uncertainAttempts, { answered: true, sent: true, channel });
        // The failed attempt's channel as it stands now: a report may have named it meanwhile.
        this.#recordSend(outcome.response, 'fallback', { channel, switchedFrom: attempt.channel });
      } else {
        const filledPreludeWindow =
          outcome.code === 'too_many_attempts' &&
          uncertainAttempts > 1 &&
          patched(fullAfterLostFallbacksPatch);
        const mayHaveSent = await this.#countLostFallbacks(uncertainAttempts, {
          answered: filledPreludeWindow,
          sent: false,
          channel,
        });
        log.warn('Prelude refused the fallback send', { code: outcome.code });
        this.#noteSendsUsedUp(outcome.code);
        // No attempt of it that may have reached Prelude: it sent nothing.
        if (mayHaveSent === 0) await this.#giveBack(giveBackRefusedFallbackPatch);
      }
    } catch (error) {
      const { failure, uncertainAttempts } = failedAttempts(error);
      const mayHaveSent = await this.#countLostFallbacks(uncertainAttempts, {
        answered: false,
        sent: false,
        channel,
      });
      log.warn('fallback send failed', { error: describe(failure) });
      await this.#givenBackUnsent(error, mayHaveSent, giveBackUnsentFallbackPatch);
    }
  }

  /**
   * The codes a fallback send's attempts whose answers were lost sent, counted as a resend's are:
   * those Prelude's record shows, where it can be read (`sent`: Prelude answered one of the
   * fallback's attempts with a code, which the record shows too); otherwise each of them when
   * Prelude then resent, or refused because they filled its window (`answered`), as
   * `#countLostResends` and `#afterRefusedSend` do, or else the first, and the others only where
   * Prelude resends at once, as `#sendFailed` does. Windows started by earlier code counted none (the
   * marker is written only where this counts one). Answers how many of the attempts may have
   * reached Prelude: 0 where its record shows none did.
   */
  async #countLostFallbacks(
    lostAttempts: number,
    { answered, sent, channel }: { answered: boolean; sent: boolean; channel: string },
  ): Promise<number> {
    if (lostAttempts <= 0 || !patched(countLostFallbackSendsPatch)) return lostAttempts;
    const reached = await this.#lostSendsThatReached({
      verificationId: this.#state.verificationId,
      lost: lostAttempts,
      answered: sent ? 1 : 0,
    });
    const counted = reached ?? (answered ? lostAttempts : this.#codesOfUnansweredAttempts(lostAttempts));
    for (let i = 0; i < counted; i += 1) this.#recordInferredSend('fallback', 'retry', channel);
    return reached ?? lostAttempts;
  }

  // --- Closing ---------------------------------------------------------------------------------

  /** Cancel's rule, checked before it is accepted. */
  validateCancel(): void {
    this.#refuseIfClosed();
  }

  /** Cancels in its turn: a check already under way decides the outcome it reports. */
  cancel(): Promise<VerificationState> {
    return this.#turn.run(() => {
      this.#refuseIfClosed();
      this.#close('canceled');
      return this.snapshot();
    });
  }

  /** Time is up. Steps that came before take their turns first, and decide the outcome they report. */
  async expire(): Promise<void> {
    if (this.isOpen) await this.#turn.run(() => this.#closeOutOfTime());
  }

  /** What the closed window tells Prelude afterwards (outcome-report.ts), if there is anything to tell. */
  outcomeReport(): OutcomeReport | undefined {
    const { target, windowId, outcome, sendsUsed, policy } = this.#state;
    const report: OutcomeReport = {
      target,
      windowId,
      outcome,
      sendsUsed,
      reportId: workflowInfo().runId,
      policy: { watchFeedback: policy.watchFeedback, successTemplateId: policy.successTemplateId },
    };
    return hasOutcomeToReport(report) ? report : undefined;
  }

  /**
   * Hands the closed window's {@link outcomeReport} to the target's limits entity, which makes it.
   * Best effort: the outcome stands either way.
   */
  async handOverOutcomeReport(report: OutcomeReport): Promise<void> {
    try {
      await this.#calls.entity.handOverOutcomeReport({ targetKey: this.#input.targetKey, report });
    } catch (error) {
      log.warn('handing the outcome report over failed', { error: describe(error) });
    }
  }

  /** A window out of time (ours, or Prelude's) ended on its sends when it had none left. */
  #closeOutOfTime(): void {
    this.#close(this.#state.sendsLeft === 0 ? 'max_attempts' : 'expired');
  }

  /** Closes an open window (once: whatever closed it first is its outcome). */
  #close(outcome: Outcome, details: Partial<VerificationState> = {}): void {
    if (!this.isOpen) return;
    Object.assign(this.#state, details, { outcome, closedAt: iso(Date.now()) });
    upsertSearchAttributes([{ key: outcomeSearchAttribute, value: outcome }]);
    log.info('verification window closed', { outcome });
  }

  #refuseIfClosed(): void {
    if (!this.isOpen)
      throw refusal(rejection.windowClosed, `the verification window is ${this.#state.outcome}`);
  }

  // --- Idempotency keys ------------------------------------------------------------------------

  /** Refuses a key already used by this window for another request (a validator's check: no state change). */
  #refuseReusedKey(binding: IdempotencyBinding | undefined): void {
    const seen = binding && this.#state.keyed?.[binding.keyHash];
    if (seen && seen.requestHash !== binding.requestHash) {
      throw refusal(rejection.idempotencyKeyReused, 'this Idempotency-Key was used for another request');
    }
  }

  #bindKey(binding: IdempotencyBinding | undefined, answer?: CheckCodeResult): void {
    if (!binding) return;
    this.#state.keyed = {
      ...this.#state.keyed,
      [binding.keyHash]: { requestHash: binding.requestHash, answer },
    };
  }
}

/** A send's reservation at the target's limits, once asked (see `#reservationUnderWay`). */
interface ReservationUnderWay {
  reservationId: string;
  opensWindow: boolean;
  granted: boolean;
  asker: SendAsker;
}

/** The channel a send asked for, if it asked for one. */
function requestedChannel(request: SendCodeRequest): string | undefined {
  return request.options?.method === 'voice' ? 'voice' : request.options?.preferred_channel;
}

function targetRateLimited(reservation: Extract<ReservationOutcome, { granted: false }>) {
  return refusal(rejection.targetRateLimited, reservation.message, reservation.retryAfterSeconds);
}

/** Prelude judged a check and found the code wrong (`failure`, or a PSD2 mismatch). */
function isJudgedWrong(outcome: CheckVerificationOutcome): boolean {
  return (
    outcome.kind === 'checked' &&
    outcome.response.status !== 'success' &&
    outcome.response.status !== 'expired_or_not_found'
  );
}

/** FNV-1a, 32 bits, as hex: a stable fingerprint (workflow code has no crypto module). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrUndefined(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : iso(ms);
}
