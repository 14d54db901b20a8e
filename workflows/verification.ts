/**
 * One workflow execution per verification window, mirroring Prelude's window: the first `sendCode`
 * opens it, later ones resend, `checkCode` ends it on the right code, and it closes by itself when
 * its time is up. Every rule a client could break (cooldown, send and check budgets, closed window)
 * is enforced by update validators, so refused requests never reach the history.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  ActivityFailure,
} from '@temporalio/workflow';
import type { Activities, CreateVerificationOutcome, ReservationOutcome } from '../activities';
import {
  legacyLifecycleOptions,
  lifecycleOptions,
  predictRetry,
  sideCallOptions,
  reservationAttemptTimeoutMs,
  reservationRetry,
} from './retry-policies';
import {
  outcomeSearchAttribute,
  targetKeySearchAttribute,
  verificationIdSearchAttribute,
} from './search-attributes';
import { hasOutcomeToReport, windowOutcomeWorkflow } from './window-outcome';
import {
  cancelUpdate,
  checkCodeUpdate,
  codePattern,
  deliveryStatusSignal,
  rejection,
  sendCodeUpdate,
  stateQuery,
  type CheckCodeResult,
  type DeliveryStatusReport,
  type IdempotencyBinding,
  type Outcome,
  type SendCodeRequest,
  type AttemptRecord,
  type SendCodeResult,
  type LifecycleCallSettings,
  type VerificationInput,
  type VerificationState,
} from './verification-messages';

/**
 * The calls a user waits on (see `lifecycleRetry` for why so few attempts). Local by default: the
 * call runs inside the workflow task that took the request, with no task dispatch.
 */
function lifecycleProxies(calls: LifecycleCallSettings | undefined) {
  if (!calls) {
    // Windows started before call settings existed: regular activities, 15 s attempts, 3 of them.
    const legacy = proxyActivities<Activities>(legacyLifecycleOptions);
    return { create: legacy, check: legacy, predict: sideCalls, reserve: legacy };
  }
  const proxy = calls.mode === 'local' ? proxyLocalActivities<Activities> : proxyActivities<Activities>;
  return {
    create: proxy(lifecycleOptions(calls.attemptTimeoutMs)),
    // Checks are always regular activities: their scheduling is in history before Prelude is
    // called, so a check cut short by a worker crash comes back as attempt 2 and its answer is read
    // as a retry's. A local check re-run after a crash would look like a first attempt, and a right
    // code that Prelude accepted just before the crash would read as expired.
    check: proxyActivities<Activities>(lifecycleOptions(calls.attemptTimeoutMs)),
    predict: proxy(lifecycleOptions(calls.attemptTimeoutMs, predictRetry)),
    reserve: proxy({ startToCloseTimeout: reservationAttemptTimeoutMs, retry: reservationRetry }),
  };
}

// Predict (in windows started before the calls a user waits on were settable), feedback and
// notify are safe (or harmless) to repeat.
const sideCalls = proxyActivities<Activities>(sideCallOptions);

/** The verification window. Returns its final state. */
export async function verificationWorkflow(input: VerificationInput): Promise<VerificationState> {
  const { target, policy } = input;
  const calls = lifecycleProxies(input.calls);
  // Windows started before these settings replay exactly as their histories recorded.
  const modern = input.calls !== undefined;
  const fallbackChannels = policy.fallbackChannels ?? [];
  const deliveryTimeoutMs = (policy.deliveryTimeoutSeconds ?? 0) * 1000;
  const windowId = workflowInfo().workflowId;
  const openedAt = Date.now();
  const expiresAt = openedAt + policy.windowSeconds * 1000;
  const state: VerificationState = {
    windowId,
    target,
    targetKey: input.targetKey,
    outcome: 'open',
    attempts: [],
    sendsUsed: 0,
    sendsLeft: policy.maxSends,
    checksUsed: 0,
    checksLeft: policy.maxChecks,
    openedAt: iso(openedAt),
    expiresAt: iso(expiresAt),
    policy,
  };
  let lastSendAt: number | undefined;
  let sending = false;
  let checking = false;
  const appliedEvents = new Set<string>();
  // Bumped whenever something a fallback decision depends on changes (a send, a delivery report).
  let changes = 0;
  const fellBackFrom = new Set<number>();

  const isOpen = () => state.outcome === 'open';
  // A closed window takes no resend, so it has no next resend time.
  const nextResendAt = (): number | undefined =>
    lastSendAt === undefined || state.sendsLeft === 0 || !isOpen()
      ? undefined
      : lastSendAt + policy.resendCooldownSeconds * 1000;
  const snapshot = (): VerificationState => {
    const next = nextResendAt();
    return {
      ...state,
      attempts: state.attempts.map((a) => ({ ...a })),
      nextResendAt: next === undefined ? undefined : iso(next),
    };
  };
  const close = (outcome: Outcome, details: Partial<VerificationState> = {}) => {
    if (!isOpen()) return;
    Object.assign(state, details, { outcome, closedAt: iso(Date.now()) });
    upsertSearchAttributes([{ key: outcomeSearchAttribute, value: outcome }]);
    log.info('verification window closed', { outcome });
  };
  const sendResult = (status: string): SendCodeResult => {
    const next = nextResendAt();
    return {
      status,
      windowId,
      verificationId: state.verificationId,
      method: state.method,
      channels: state.channels,
      reason: state.reason,
      riskFactors: state.riskFactors,
      sendsUsed: state.sendsUsed,
      expiresAt: state.expiresAt,
      nextResendAt: next === undefined ? undefined : iso(next),
    };
  };
  const checkResult = (status: CheckCodeResult['status']): CheckCodeResult => ({
    status,
    windowId,
    verificationId: state.verificationId,
    checksUsed: state.checksUsed,
    checksLeft: state.checksLeft,
  });

  const spendChecks = (count: number) => {
    state.checksUsed = Math.min(policy.maxChecks, state.checksUsed + count);
    state.checksLeft = policy.maxChecks - state.checksUsed;
  };
  /** A code as the window remembers it (never in clear in its state). */
  const codeHash = (code: string) => fnv1a(`${windowId}:${code.toUpperCase()}`);

  /** Refuses a key already used by this window for another request (a validator's check: no state change). */
  const refuseReusedKey = (binding: IdempotencyBinding | undefined) => {
    const seen = binding && state.keyed?.[binding.keyHash];
    if (seen && seen.requestHash !== binding.requestHash) {
      throw refuse(rejection.idempotencyKeyReused, 'this Idempotency-Key was used for another request');
    }
  };
  const bindKey = (binding: IdempotencyBinding | undefined, answer?: CheckCodeResult) => {
    if (!binding) return;
    state.keyed = { ...state.keyed, [binding.keyHash]: { requestHash: binding.requestHash, answer } };
  };

  setHandler(stateQuery, snapshot);

  setHandler(
    sendCodeUpdate,
    async (request: SendCodeRequest): Promise<SendCodeResult> => {
      bindKey(request.idempotency);
      sending = true;
      const firstSend = state.sendsUsed === 0;
      try {
        // Windows without limits (started before them) must not even yield here: their histories
        // recorded the create before the deadline timer.
        const reservation = input.limits ? await reserveSend(firstSend) : undefined;
        if (reservation && !reservation.granted) {
          if (firstSend) close('rate_limited');
          throw refuse(rejection.targetRateLimited, reservation.message, reservation.retryAfterSeconds);
        }
        if (firstSend && policy.fraudMode !== 'off') {
          const prediction = await predict(request);
          if (policy.fraudMode === 'enforce' && prediction?.prediction === 'suspicious') {
            close('blocked', { reason: 'suspicious', riskFactors: prediction.risk_factors });
            return sendResult('blocked');
          }
        }
        const outcome = await calls.create.createVerification({
          target,
          correlationId: windowId,
          signals: request.signals,
          options: request.options,
          dispatchId: request.dispatchId,
        });
        if (outcome.kind === 'refused' && outcome.retried && outcome.code === 'premature_retry') {
          // Prelude counts a send from the earlier attempt, whose answer was lost: the code went out.
          return recordInferredSend(firstSend ? 'initial' : 'user_retry', firstSend ? 'success' : 'retry');
        }
        if (outcome.kind === 'refused') {
          if (outcome.code === 'too_many_attempts') state.sendsLeft = 0;
          throw ApplicationFailure.create({
            type: outcome.code,
            message: `Prelude refused the send: ${outcome.message}`,
            nonRetryable: true,
            details: [{ retryAfterSeconds: seconds(outcome.retryAfterMs) }],
          });
        }
        const channel = request.options?.method === 'voice' ? 'voice' : request.options?.preferred_channel;
        if (firstSend && outcome.response.status === 'retry') {
          // Prelude already had a window open for this target: either an earlier attempt of this
          // send opened it (its answer lost: a send of this window), or a window of ours closed
          // before Prelude's did and this send continues Prelude's window. Either way, to the caller
          // this window is a new one.
          // With no other window of this target in the period (the limits entity says so), the
          // earlier send can only have been this window's, lost to a crash.
          const ownEarlierSend = outcome.retried || state.targetUsage?.windowsUsed === 1;
          if (ownEarlierSend) recordInferredSend('initial', 'success');
          recordSend(outcome.response, ownEarlierSend ? 'user_retry' : 'initial', { channel });
          return sendResult('success');
        }
        return recordSend(outcome.response, firstSend ? 'initial' : 'user_retry', { channel });
      } catch (error) {
        // A window whose first send failed has nothing to check; closing it lets the next start
        // open a fresh one instead of resending into a window Prelude never opened.
        if (firstSend) close('failed', { failure: describe(error) });
        throw asUpdateFailure(error);
      } finally {
        sending = false;
      }
    },
    {
      validator: (request: SendCodeRequest) => {
        refuseReusedKey(request.idempotency);
        if (!isOpen()) throw refuse(rejection.windowClosed, `the verification window is ${state.outcome}`);
        if (state.sendsLeft === 0) {
          throw refuse(rejection.tooManyAttempts, `all ${policy.maxSends} sends of this window are used`);
        }
        if (sending) throw refuse(rejection.prematureRetry, 'a send is already in progress', 1);
        const next = nextResendAt();
        if (next !== undefined && Date.now() < next) {
          throw refuse(
            rejection.prematureRetry,
            'the resend cooldown has not elapsed',
            seconds(next - Date.now()),
          );
        }
      },
    },
  );

  /** Records a send Prelude made whose answer never reached us (see the send handler's rules). */
  /**
   * Leave from the target's limits entity for the next send (and a window, for the first): the
   * limits span every window of the target. The reservation is named after the send, so a retried
   * one, or one whose send then failed, is counted once.
   */
  async function reserveSend(opensWindow: boolean): Promise<ReservationOutcome> {
    const reservation = await calls.reserve.reserveTargetSend({
      targetKey: input.targetKey,
      reservationId: `${workflowInfo().runId}:${state.sendsUsed + 1}`,
      opensWindow,
      limits: input.limits!,
    });
    if (reservation.granted) state.targetUsage = reservation.usage;
    return reservation;
  }

  /**
   * Watch's verdict on the target, recorded in the state. Advisory: when Watch cannot be reached the
   * send goes on, recorded as `unavailable` (windows started before kept failing the send).
   */
  async function predict(request: SendCodeRequest) {
    const ask = () =>
      calls.predict.predictTarget({
        target,
        correlationId: windowId,
        signals: request.signals,
        dispatchId: request.dispatchId,
      });
    if (!modern) {
      const prediction = await ask();
      state.prediction = prediction.prediction;
      return prediction;
    }
    try {
      const prediction = await ask();
      state.prediction = prediction.prediction;
      return prediction;
    } catch (error) {
      log.warn('Watch predict failed; sending without a prediction', { error: describe(error) });
      state.prediction = 'unavailable';
      return undefined;
    }
  }

  function recordInferredSend(trigger: AttemptRecord['trigger'], status: string): SendCodeResult {
    lastSendAt = Date.now();
    state.sendsUsed += 1;
    state.sendsLeft = Math.max(0, policy.maxSends - state.sendsUsed);
    state.attempts.push({
      number: state.attempts.length + 1,
      trigger,
      sentAt: iso(lastSendAt),
      inferred: true,
    });
    changes += 1;
    return sendResult(status);
  }

  function recordSend(
    response: Extract<CreateVerificationOutcome, { kind: 'sent' }>['response'],
    trigger: AttemptRecord['trigger'],
    requested: { channel?: string; switchedFrom?: string } = {},
  ): SendCodeResult {
    if (response.status === 'blocked') {
      close('blocked', {
        verificationId: response.id,
        reason: response.reason,
        riskFactors: response.risk_factors,
      });
      return sendResult('blocked');
    }
    lastSendAt = Date.now();
    state.sendsUsed += 1;
    state.sendsLeft = Math.max(0, policy.maxSends - state.sendsUsed);
    state.method = response.method;
    state.channels = response.channels;
    state.reason = response.reason;
    state.riskFactors = response.risk_factors;
    state.attempts.push({
      number: state.attempts.length + 1,
      trigger,
      sentAt: iso(lastSendAt),
      // Prelude plans a channel sequence and moves along it with each attempt of the window.
      channel:
        requested.channel ??
        response.channels?.[Math.min(state.sendsUsed - 1, response.channels.length - 1)] ??
        (response.method === 'email' ? 'email' : undefined),
      ...(requested.switchedFrom ? { switchedFrom: requested.switchedFrom } : {}),
    });
    changes += 1;
    if (state.verificationId !== response.id) {
      state.verificationId = response.id;
      upsertSearchAttributes([{ key: verificationIdSearchAttribute, value: response.id }]);
    }
    return sendResult(response.status);
  }

  setHandler(
    checkCodeUpdate,
    async ({ code, idempotency }): Promise<CheckCodeResult> => {
      // Bound before the first wait, so a concurrent request reusing the key is refused; bound again
      // with the answer, which a retry gets even once the window has closed. (Inline, not in a helper
      // function: an extra await would reorder commands against recorded histories.)
      bindKey(idempotency);
      const answer = (result: CheckCodeResult) => {
        bindKey(idempotency, result);
        return result;
      };
      // Checks run one at a time: each must see the budget and the outcome the previous one left.
      await condition(() => !checking);
      checking = true;
      try {
        // A closed window answers like no window at all, whatever closed it.
        if (!isOpen()) return answer(checkResult('expired_or_not_found'));
        const outcome = await calls.check.checkVerification({ target, code });
        if (outcome.kind === 'refused') {
          state.checksLeft = 0;
          close('max_checks');
          throw refuse(rejection.tooManyChecks, `Prelude refused the check: ${outcome.message}`);
        }
        const { status } = outcome.response;
        const earlierMayHaveReached = outcome.retried || state.uncertainCodes?.includes(codeHash(code));
        if (status === 'expired_or_not_found' && earlierMayHaveReached && Date.now() < expiresAt) {
          // Prelude closes a window early only on a right code. Our window is inside its lifetime
          // with checks left, so an earlier check of this very code (a retried attempt, or a check
          // whose every attempt failed after one may have reached Prelude), whose answer was lost,
          // succeeded.
          spendChecks(1);
          close('verified', {
            inferred: 'a retried check found Prelude’s window closed: its earlier attempt succeeded',
          });
          return answer(checkResult('success'));
        }
        if (status === 'expired_or_not_found') {
          close(state.sendsLeft === 0 ? 'max_attempts' : 'expired');
          return answer(checkResult('expired_or_not_found'));
        }
        // A retried wrong code was most likely counted by Prelude twice (the lost attempt and this
        // one): the window counts both, so it never shows more checks than Prelude has left.
        spendChecks(status !== 'success' && outcome.retried ? 2 : 1);
        if (status === 'success') {
          close('verified');
          return answer(checkResult('success'));
        }
        // `failure`, and anything else Prelude may answer (e.g. a PSD2 mismatch), spends a check.
        if (state.checksLeft === 0) close('max_checks');
        return answer(checkResult('failure'));
      } catch (error) {
        if (modern && error instanceof ActivityFailure && isOpen()) {
          // Every attempt failed, and one may have reached Prelude: the check may be spent, and if
          // this code was right, Prelude's window is now closed. Remembered, so that the user's
          // retry of the same code is read as such.
          spendChecks(1);
          state.uncertainCodes = [...(state.uncertainCodes ?? []), codeHash(code)];
          if (state.checksLeft === 0) close('max_checks');
        }
        throw asUpdateFailure(error);
      } finally {
        checking = false;
      }
    },
    {
      validator: ({ code, idempotency }) => {
        refuseReusedKey(idempotency);
        if (typeof code !== 'string' || !codePattern.test(code)) {
          throw refuse(rejection.invalidCode, 'a code is 4 to 8 letters or digits');
        }
        // Closed, whatever closed it, reads exactly like no window at all: the answer must not tell
        // a caller how a target's last window ended.
        if (!isOpen()) throw refuse(rejection.windowClosed, 'no verification window is open');
        if (state.sendsUsed === 0)
          throw refuse(rejection.windowClosed, 'no code has been sent in this window');
      },
    },
  );

  setHandler(
    cancelUpdate,
    () => {
      close('canceled');
      return snapshot();
    },
    {
      validator: () => {
        if (!isOpen()) throw refuse(rejection.windowClosed, `the verification window is ${state.outcome}`);
      },
    },
  );

  setHandler(deliveryStatusSignal, (report: DeliveryStatusReport) => {
    if (appliedEvents.has(report.eventId)) return;
    // A late report about an earlier window of the same target (an earlier run) is not ours.
    if (report.verificationId && state.verificationId && report.verificationId !== state.verificationId)
      return;
    appliedEvents.add(report.eventId);
    applyDeliveryReport(state, report);
    changes += 1;
  });

  /** When the latest attempt should be resent on the next fallback channel, if it should. */
  const fallbackDueAt = (): number | undefined => {
    const last = state.attempts.at(-1);
    if (!last || !isOpen() || sending || state.sendsLeft === 0 || fellBackFrom.has(last.number))
      return undefined;
    if (nextChannel(fallbackChannels, last.channel) === undefined) return undefined;
    const earliest = nextResendAt() ?? Date.now();
    if (last.deliveryStatus === 'undeliverable') return earliest;
    if (deliveryTimeoutMs > 0 && last.deliveryStatus !== 'delivered') {
      return Math.max(earliest, Date.parse(last.sentAt) + deliveryTimeoutMs);
    }
    return undefined;
  };

  const fallBack = async (): Promise<void> => {
    const last = state.attempts.at(-1)!;
    fellBackFrom.add(last.number);
    const channel = nextChannel(fallbackChannels, last.channel)!;
    sending = true;
    try {
      const reservation = input.limits ? await reserveSend(false) : undefined;
      if (reservation && !reservation.granted) {
        log.warn('the target’s limits refused the fallback send', {
          retryAfterSeconds: reservation.retryAfterSeconds,
        });
        return;
      }
      const outcome = await calls.create.createVerification({
        target,
        correlationId: windowId,
        options: channel === 'voice' ? { method: 'voice' } : { preferred_channel: channel },
      });
      if (outcome.kind === 'sent') {
        recordSend(outcome.response, 'fallback', { channel, switchedFrom: last.channel });
      } else {
        log.warn('Prelude refused the fallback send', { code: outcome.code });
        if (outcome.code === 'too_many_attempts') state.sendsLeft = 0;
      }
    } catch (error) {
      log.warn('fallback send failed', { error: describe(error) });
    } finally {
      sending = false;
    }
  };

  if (modern) {
    // One timer for the window's deadline, started once: waiting on messages adds no timer, so a
    // window without fallback channels writes exactly one TimerStarted and never a TimerCanceled.
    let deadlinePassed = false;
    void sleep(expiresAt - openedAt).then(() => (deadlinePassed = true));
    while (isOpen() && !deadlinePassed) {
      const seen = changes;
      const dueAt = fallbackDueAt();
      const woken = () => !isOpen() || deadlinePassed || changes !== seen;
      if (dueAt === undefined) await condition(woken);
      else await condition(woken, Math.max(1, dueAt - Date.now()));
      const due = fallbackDueAt();
      if (isOpen() && !deadlinePassed && due !== undefined && due <= Date.now()) await fallBack();
    }
  } else {
    // Windows started before: a timer per wait, as their histories recorded.
    while (isOpen() && Date.now() < expiresAt) {
      const seen = changes;
      const dueAt = fallbackDueAt();
      const wakeAt = dueAt === undefined ? expiresAt : Math.min(dueAt, expiresAt);
      await condition(() => !isOpen() || changes !== seen, Math.max(1, wakeAt - Date.now()));
      if (isOpen() && fallbackDueAt() !== undefined && fallbackDueAt()! <= Date.now()) await fallBack();
    }
  }
  if (isOpen()) {
    // A send or check already under way decides the outcome it reports; expiry waits for it.
    await condition(() => !sending && !checking);
    close(state.sendsLeft === 0 ? 'max_attempts' : 'expired');
  }
  await condition(allHandlersFinished);
  if (!modern) await reportOutcome(input, state);
  else await startOutcomeReport(state, openedAt);
  return snapshot();
}

/**
 * Starts the run that reports a closed window's outcome (abandoned: it outlives the window), when
 * there is anything to report, so that the window can complete at once.
 */
async function startOutcomeReport(state: VerificationState, openedAt: number): Promise<void> {
  const report = {
    target: state.target,
    windowId: state.windowId,
    outcome: state.outcome,
    sendsUsed: state.sendsUsed,
    policy: { watchFeedback: state.policy.watchFeedback, successTemplateId: state.policy.successTemplateId },
  };
  if (!hasOutcomeToReport(report)) return;
  await startChild(windowOutcomeWorkflow, {
    // Named after the window's opening time, which replays identically (a run ID does not).
    workflowId: `${state.windowId}-outcome-${openedAt}`,
    args: [report],
    parentClosePolicy: 'ABANDON',
    typedSearchAttributes: [{ key: targetKeySearchAttribute, value: state.targetKey }],
  });
}

/** The channel after `current` in a fallback list (from the start when `current` is not in it). */
function nextChannel(channels: string[], current: string | undefined): string | undefined {
  const at = current === undefined ? -1 : channels.indexOf(current);
  return channels[at + 1];
}

/**
 * Attaches a webhook report to the attempt it is about. Prelude names attempts (`att_…`) only in
 * webhooks, so a report with a new attempt ID belongs to the oldest send not yet named; when every
 * send is named, Prelude added the attempt on its own (an automatic fallback).
 */
function applyDeliveryReport(state: VerificationState, report: DeliveryStatusReport): void {
  let attempt =
    state.attempts.find((a) => a.attemptId === report.attemptId) ??
    state.attempts.find((a) => a.attemptId === undefined);
  if (!attempt) {
    attempt = {
      number: state.attempts.length + 1,
      trigger: 'auto_retry',
      sentAt: report.time,
      channel: report.channel,
    };
    state.attempts.push(attempt);
  }
  attempt.attemptId = report.attemptId;
  if (report.channel) attempt.channel = report.channel;
  // Webhooks arrive in any order: a late `submitted` must not overwrite an earlier-timed `delivered`.
  if (!attempt.deliveryUpdatedAt || report.time >= attempt.deliveryUpdatedAt) {
    attempt.deliveryStatus = report.status;
    attempt.deliveryUpdatedAt = report.time;
  }
}

/** Windows started before outcome reports ran on their own: feedback and success message inline. */
async function reportOutcome({ target, policy }: VerificationInput, state: VerificationState): Promise<void> {
  const verified = state.outcome === 'verified';
  try {
    if (policy.watchFeedback && state.sendsUsed > 0) {
      await sideCalls.sendWatchFeedback({
        target,
        correlationId: state.windowId,
        types: verified ? ['verification.started', 'verification.completed'] : ['verification.started'],
      });
    }
    if (verified && policy.successTemplateId && target.type === 'phone_number') {
      await sideCalls.sendNotification({
        template_id: policy.successTemplateId,
        to: target.value,
        correlation_id: state.windowId,
      });
    }
  } catch (error) {
    log.warn('reporting the outcome failed', { error: describe(error) });
  }
}

function refuse(type: string, message: string, retryAfterSeconds?: number): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    details: retryAfterSeconds === undefined ? undefined : [{ retryAfterSeconds }],
  });
}

/**
 * Update handlers fail only the update when they throw an ApplicationFailure; anything else would
 * fail the workflow task. An activity's failure keeps its Prelude type (e.g. `Prelude.invalid_request`).
 */
function asUpdateFailure(error: unknown): unknown {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) {
    return ApplicationFailure.create({
      type: error.cause.type ?? 'Prelude.error',
      message: error.cause.message,
      nonRetryable: true,
      details: error.cause.details ? [...error.cause.details] : undefined,
    });
  }
  return ApplicationFailure.create({ type: 'failed', message: describe(error), nonRetryable: true });
}

function describe(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
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

function seconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
