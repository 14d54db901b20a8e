import {
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createHash, randomUUID } from 'node:crypto';
import { lifecycleAttemptMarginMs, privacyKeys, type Config } from '../../temporal.config';
import { verificationWorkflow } from '../../workflows';
import {
  cancelUpdate,
  checkCodeUpdate,
  outcomeSearchAttribute,
  rejection,
  sendCodeUpdate,
  stateQuery,
  targetKeySearchAttribute,
  codePattern,
  type CheckCodeResult,
  type IdempotencyBinding,
  type LifecycleCallSettings,
  type TargetLimits,
  type SendCodeResult,
  type VerificationState,
  type WindowPolicy,
} from '../../workflows/messages';
import { userFacingWorkflowTaskTimeout } from '../../workflows/retry-policies';
import { giveBackGrant, grantRefOf, guardSend, type GuardPass } from '../guards/check';
import type { SendGuardSettings } from '../guards/settings';
import type { Target } from '../prelude/schemas';
import { call, readState, type CallOptions, type CallSettings } from './calls';
import { normalize, parse } from './input';
import { VerificationError, type VerificationErrorCode } from './errors';
import { targetKey, windowId as windowIdOf } from './ids';
import {
  checkCodeRequestSchema,
  idempotencyKeySchema,
  startVerificationRequestSchema,
  type CheckCodeRequestInput,
  type StartVerificationRequest,
} from './schemas';

/**
 * Where the helpers find the windows, and the defaults of a new window. Every helper takes them
 * explicitly: an entry point builds them from configuration with {@link verificationClientOptions}.
 */
export interface VerificationClientOptions extends CallOptions {
  /** Task queue the worker polls (`TEMPORAL_TASK_QUEUE`). */
  taskQueue: string;
  /** Policy of a new window; a start's `policy` overrides any of it. */
  policy: WindowPolicy;
  /**
   * HMAC key of workflow IDs and target keys (`VERIFY_ID_KEY`). `null` is the explicit plaintext
   * opt-out (`PRIVACY_MODE=plaintext`): the target itself is then in the ID.
   */
  idKey: string | null;
  /** How new windows call Prelude for create, check and predict (`VERIFY_ACTIVITY_MODE`). */
  calls: LifecycleCallSettings;
  /** Windows and sends a target gets per period, across windows (`VERIFY_*_PER_TARGET`). */
  limits: TargetLimits;
  /** What every phone send passes first, against SMS pumping (`GUARD_*`). */
  guards: SendGuardSettings;
}

/** The helpers' options as configured (see temporal.config.ts). */
export function verificationClientOptions(
  config: Pick<Config, 'temporal' | 'verify' | 'privacy' | 'prelude' | 'guards'>,
): VerificationClientOptions {
  return {
    taskQueue: config.temporal.taskQueue,
    policy: config.verify.policy,
    idKey: privacyKeys(config.privacy).idKey,
    callTimeoutMs: config.verify.callTimeoutMs,
    calls: {
      mode: config.verify.activityMode,
      // The margin lets an attempt end by the client's own timeout error, not Temporal's.
      attemptTimeoutMs: config.prelude.timeoutMs + lifecycleAttemptMarginMs,
      ...(config.prelude.resendDelaySeconds !== undefined
        ? { preludeResendDelaySeconds: config.prelude.resendDelaySeconds }
        : {}),
    },
    limits: config.verify.targetLimits,
    guards: config.guards,
  };
}

/** What the window helpers' calls are about. */
const windowCall: CallSettings = { notFound: 'no verification window is open for that target' };

/**
 * The answer to {@link startVerification}: Prelude's create answer plus the window's bookkeeping,
 * and what the send guards noticed (for the operator's metrics and logs, not for the caller).
 */
export type StartVerificationResult = SendCodeResult & { guard?: GuardPass };

/**
 * Sends a code to a target: opens a verification window (a new workflow) when none is open, or
 * resends in the open one — Prelude's create-or-retry rule, made durable with Update-with-Start.
 *
 * @returns `status` in Prelude's words: `success` (new window), `retry` (resend), `blocked`, …
 * A phone send passes the send guards first (src/guards): a refused one writes nothing and sends
 * nothing.
 *
 * @throws VerificationError `premature_retry` (with `retryAfterSeconds`), `too_many_attempts`,
 *   `target_rate_limited`, `country_not_allowed`, `country_budget_exhausted`, `ip_rate_limited`,
 *   `device_rate_limited`, `number_block_velocity`, `invalid_request`, `prelude_unavailable`,
 *   `prelude_error`, `unavailable`.
 */
export async function startVerification(
  client: Client,
  request: StartVerificationRequest,
  options: VerificationClientOptions,
): Promise<StartVerificationResult> {
  checkIdempotencyKey(request);
  const input = parse(startVerificationRequestSchema, request);
  const target = normalize(input.target);
  const key = targetKey(target, options.idKey);
  const idempotency = bindIdempotencyKey(
    input.idempotencyKey,
    target,
    input.signals,
    input.options,
    input.policy,
  );
  const updateId = idempotency ? `send-${idempotency.keyHash}-${idempotency.requestHash}` : randomUUID();
  const { pass: guard, grant } = await guardSend(
    client,
    { target, signals: input.signals, requestId: `guard-${updateId}` },
    options,
  );
  // A window that has just closed, but whose run has not completed yet, refuses the send; the run
  // completes at once, and the next attempt opens a new window.
  const windowId = windowIdOf(target, options.idKey);
  try {
    const sent = await call(
      client,
      options,
      () =>
        client.workflow.executeUpdateWithStart(sendCodeUpdate, {
          args: [
            {
              signals: input.signals,
              options: input.options,
              dispatchId: input.dispatchId,
              idempotency,
              ...(grant ? { guard: grantRefOf(grant) } : {}),
            },
          ],
          updateId,
          // An operation can be used once; a retried call gets a new one.
          startWorkflowOperation: new WithStartWorkflowOperation(verificationWorkflow, {
            workflowId: windowId,
            taskQueue: options.taskQueue,
            args: [
              {
                target,
                targetKey: key,
                policy: { ...options.policy, ...input.policy },
                // Not options: every window this code starts makes a send's calls in one round.
                calls: { ...options.calls, reserveWithCreate: true, predictWithSend: true },
                limits: options.limits,
              },
            ],
            workflowIdConflictPolicy: 'USE_EXISTING',
            workflowTaskTimeout: userFacingWorkflowTaskTimeout,
            typedSearchAttributes: [
              { key: targetKeySearchAttribute, value: key },
              { key: outcomeSearchAttribute, value: 'open' },
            ],
          }),
        }),
      { ...windowCall, retryIf: isClosedWindowRefusal },
    );
    return guard.country ? { ...sent, guard } : sent;
  } catch (error) {
    await giveBackGrant(client, grant, error);
    throw await pendingIfSending(client, windowId, error);
  }
}

/**
 * Checks the code a user typed against the target's open window, synchronously.
 *
 * @returns `success` (the window is verified and closed), `failure` (with `checksLeft`), or
 *   `expired_or_not_found` (no open window).
 * @throws VerificationError `too_many_checks`, `invalid_code`, `invalid_request`,
 *   `invalid_idempotency_key`, `idempotency_key_reused`, `prelude_unavailable`, `prelude_error`,
 *   `unavailable`.
 */
export async function checkCode(
  client: Client,
  request: CheckCodeRequestInput,
  options: VerificationClientOptions,
): Promise<CheckCodeResult> {
  checkIdempotencyKey(request);
  const input = parse(checkCodeRequestSchema, request);
  // Refused before any workflow is contacted, so the answer is the same whether a window exists.
  if (!codePattern.test(input.code))
    throw new VerificationError('invalid_code', 'a code is 4 to 8 letters or digits');
  const target = normalize(input.target);
  const handle = client.workflow.getHandle<typeof verificationWorkflow>(windowIdOf(target, options.idKey));
  const idempotency = bindIdempotencyKey(input.idempotencyKey, target, input.code);
  try {
    return await call(
      client,
      options,
      () =>
        handle.executeUpdate(checkCodeUpdate, {
          args: [{ code: input.code, idempotency }],
          updateId: idempotency ? `check-${idempotency.keyHash}-${idempotency.requestHash}` : randomUUID(),
        }),
      windowCall,
    );
  } catch (error) {
    if (!isVerificationError(error, 'not_found')) throw error;
    return idempotency
      ? keyedAnswerOfClosedWindow(client, options, handle, idempotency)
      : noWindow(handle.workflowId);
  }
}

/** The deadline of a read made after a call's own deadline passed: short, a user is waiting. */
const followUpTimeoutMs = 2_000;

/**
 * A send whose deadline passed is `pending` when a worker had taken it up (the window's first task
 * ran, so the send is under way and will finish: the window says how), and stays `unavailable` when no
 * worker did — or when the window cannot be read to tell (none yet, or no answer in time either).
 */
async function pendingIfSending(client: Client, windowId: string, error: unknown): Promise<unknown> {
  if (!isVerificationError(error, 'unavailable')) return error;
  let description;
  try {
    description = await call(
      client,
      { callTimeoutMs: followUpTimeoutMs },
      () => client.workflow.getHandle(windowId).describe(),
      windowCall,
    );
  } catch (readError) {
    if (isVerificationError(readError, 'not_found') || isVerificationError(readError, 'unavailable')) {
      return error;
    }
    throw readError;
  }
  const taken =
    description.status.name === 'RUNNING' && (description.historyLength ?? 0) > historyOfAnUntakenWindow;
  if (!taken) return error;
  return new VerificationError(
    'pending',
    'the send is still under way: read the window for its outcome',
    undefined,
    windowId,
  );
}

/** The events of a window no worker has taken yet: WorkflowExecutionStarted, WorkflowTaskScheduled. */
const historyOfAnUntakenWindow = 2;

/** No window, or a closed one, whatever closed it: one answer, so nothing is learnt about a target. */
function noWindow(windowId: string): CheckCodeResult {
  return { status: 'expired_or_not_found', windowId, checksUsed: 0, checksLeft: 0 };
}

/**
 * A keyed check that found the window closed: a retry of the check that closed it (same key, same
 * request) gets that check's answer again; the key used for another request is refused. A target that
 * never had a window, or whose newest window is another, has no such answer.
 */
async function keyedAnswerOfClosedWindow(
  client: Client,
  options: CallOptions,
  handle: WorkflowHandle<typeof verificationWorkflow>,
  { keyHash, requestHash }: IdempotencyBinding,
): Promise<CheckCodeResult> {
  let final: VerificationState | undefined;
  try {
    final = await call(client, options, () => readState(handle, stateQuery), windowCall);
  } catch (error) {
    if (!isVerificationError(error, 'not_found')) throw error;
  }
  const seen = final?.keyed?.[keyHash];
  if (seen && seen.requestHash !== requestHash) {
    throw new VerificationError(
      'idempotency_key_reused',
      'this Idempotency-Key was used for another request',
    );
  }
  return seen?.answer ?? noWindow(handle.workflowId);
}

/** A malformed key is its own error, before anything else about the request. */
function checkIdempotencyKey(request: { idempotencyKey?: unknown }): void {
  if (
    request.idempotencyKey !== undefined &&
    !idempotencyKeySchema.safeParse(request.idempotencyKey).success
  ) {
    throw new VerificationError(
      'invalid_idempotency_key',
      'an Idempotency-Key is 1 to 255 letters, digits and . _ : -',
    );
  }
}

/**
 * Hashes of a key and of the request it came with (the normalised target and what else makes the
 * request): the window refuses the key for another request, and the pair names the update, so a
 * retry of the same request is the same update and gets its first answer.
 */
function bindIdempotencyKey(
  key: string | undefined,
  target: Target,
  ...request: unknown[]
): IdempotencyBinding | undefined {
  if (key === undefined) return undefined;
  const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
  return { keyHash: hash(key), requestHash: hash(JSON.stringify([target, ...request])) };
}

/** {@link getVerification} by the window's ID (the workflow ID). */
export async function getVerificationById(
  client: Client,
  windowId: string,
  options: CallOptions,
): Promise<VerificationState> {
  const handle = client.workflow.getHandle<typeof verificationWorkflow>(windowId);
  return call(client, options, () => readState(handle, stateQuery), windowCall);
}

/** {@link cancelVerification} by the window's ID (the workflow ID). */
export async function cancelVerificationById(
  client: Client,
  windowId: string,
  options: CallOptions,
): Promise<VerificationState> {
  const handle = client.workflow.getHandle<typeof verificationWorkflow>(windowId);
  const updateId = randomUUID();
  return call(client, options, () => handle.executeUpdate(cancelUpdate, { updateId }), windowCall);
}

/** A helper by window ID, called by target: the window ID is made from the target. */
function byTarget<T>(
  byId: (client: Client, windowId: string, options: VerificationClientOptions) => Promise<T>,
): (client: Client, target: Target, options: VerificationClientOptions) => Promise<T> {
  return async (client, target, options) =>
    byId(client, windowIdOf(normalize(target), options.idKey), options);
}

/**
 * The window of a target as it stands (or as it ended): attempts, delivery statuses, checks,
 * deadline and outcome.
 *
 * @throws VerificationError `not_found` when the target never had a window, `unavailable`.
 */
export const getVerification = byTarget(getVerificationById);

/**
 * Closes the target's open window without verifying it.
 *
 * @throws VerificationError `not_found` when no window is open, `unavailable`.
 */
export const cancelVerification = byTarget(cancelVerificationById);

/** A send refused because the window has just closed (its run is completing): the next try opens a new one. */
function isClosedWindowRefusal(error: unknown): boolean {
  return (
    error instanceof WorkflowUpdateFailedError &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === rejection.windowClosed
  );
}

/** Whether a helper's error is a VerificationError with that code. */
function isVerificationError(error: unknown, code: VerificationErrorCode): error is VerificationError {
  return error instanceof VerificationError && error.code === code;
}
