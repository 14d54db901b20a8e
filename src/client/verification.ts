import {
  isGrpcDeadlineError,
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createHash, randomUUID } from 'node:crypto';
import { lifecycleAttemptMarginMs, loadConfig, privacyKeys, type Config } from '../../temporal.config';
import {
  cancelUpdate,
  checkCodeUpdate,
  outcomeSearchAttribute,
  rejection,
  sendCodeUpdate,
  stateQuery,
  targetKeySearchAttribute,
  verificationWorkflow,
  codePattern,
  type CheckCodeResult,
  type IdempotencyBinding,
  type LifecycleCallSettings,
  type TargetLimits,
  type SendCodeResult,
  type VerificationState,
  type WindowPolicy,
} from '../../workflows';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { z } from 'zod';
import type { Target } from '../prelude';
import { normalize, parse } from './input';
import { VerificationError } from './errors';
import { targetKey, windowId as windowIdOf } from './ids';
import {
  checkCodeRequestSchema,
  idempotencyKeySchema,
  startVerificationRequestSchema,
  type CheckCodeRequestInput,
  type StartVerificationRequest,
} from './schemas';

/** Where the helpers find the windows, and the defaults of a new window. */
export interface VerificationClientOptions {
  /** Task queue the worker polls (`TEMPORAL_TASK_QUEUE`). */
  taskQueue: string;
  /** Policy of a new window; a start's `policy` overrides any of it. */
  policy: WindowPolicy;
  /**
   * HMAC key of workflow IDs and target keys (`VERIFY_ID_KEY`). `null` is the explicit plaintext
   * opt-out (`PRIVACY_MODE=plaintext`): the target itself is then in the ID.
   */
  idKey: string | null;
  /** Deadline of each call; a missing worker gives an `unavailable` error instead of a hang. */
  callTimeoutMs: number;
  /** How new windows call Prelude for create, check and predict (`VERIFY_ACTIVITY_MODE`). */
  calls: LifecycleCallSettings;
  /** Windows and sends a target gets per period, across windows (`VERIFY_*_PER_TARGET`). */
  limits: TargetLimits;
}

/** The helpers' options as configured (see temporal.config.ts). */
export function verificationClientOptions(
  config: Pick<Config, 'temporal' | 'verify' | 'privacy' | 'prelude'>,
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
    },
    limits: config.verify.targetLimits,
  };
}

let configured: VerificationClientOptions | undefined;

/** The options the helpers use when none are given: read once from configuration. */
function configuredOptions(): VerificationClientOptions {
  configured ??= verificationClientOptions(loadConfig());
  return configured;
}

/** The answer to {@link startVerification}: Prelude's create answer plus the window's bookkeeping. */
export type StartVerificationResult = SendCodeResult;

/**
 * Sends a code to a target: opens a verification window (a new workflow) when none is open, or
 * resends in the open one — Prelude's create-or-retry rule, made durable with Update-with-Start.
 *
 * @returns `status` in Prelude's words: `success` (new window), `retry` (resend), `blocked`, …
 * @throws VerificationError `premature_retry` (with `retryAfterSeconds`), `too_many_attempts`,
 *   `invalid_request`, `prelude_unavailable`, `prelude_error`, `unavailable`.
 */
export async function startVerification(
  client: Client,
  request: StartVerificationRequest,
  options: VerificationClientOptions = configuredOptions(),
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
  // A window that has just closed, but whose run has not completed yet, refuses the send; the run
  // completes at once, and the next attempt opens a new window.
  const windowId = windowIdOf(target, options.idKey);
  try {
    return await call(
      client,
      options,
      () =>
        client.workflow.executeUpdateWithStart(sendCodeUpdate, {
          args: [
            { signals: input.signals, options: input.options, dispatchId: input.dispatchId, idempotency },
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
                calls: options.calls,
                limits: options.limits,
              },
            ],
            workflowIdConflictPolicy: 'USE_EXISTING',
            // A task held by a worker that died is given to another after this, not Temporal's 10 s
            // default: a user is waiting. Longer local calls keep the task alive by heartbeating it.
            workflowTaskTimeout: '3 seconds',
            typedSearchAttributes: [
              { key: targetKeySearchAttribute, value: key },
              { key: outcomeSearchAttribute, value: 'open' },
            ],
          }),
        }),
      isClosedWindowRefusal,
    );
  } catch (error) {
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
  options: VerificationClientOptions = configuredOptions(),
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
    return await call(client, options, () =>
      handle.executeUpdate(checkCodeUpdate, {
        args: [{ code: input.code, idempotency }],
        updateId: idempotency ? `check-${idempotency.keyHash}-${idempotency.requestHash}` : randomUUID(),
      }),
    );
  } catch (error) {
    if (!(error instanceof VerificationError) || error.code !== 'not_found') throw error;
    return idempotency ? keyedAnswerOfClosedWindow(handle, idempotency) : noWindow(handle.workflowId);
  }
}

/**
 * A send whose deadline passed is `pending` when a worker had taken it up (the window's first task
 * ran, so the send is under way and will finish: the window says how), and stays `unavailable` when no
 * worker did.
 */
async function pendingIfSending(client: Client, windowId: string, error: unknown): Promise<unknown> {
  if (!(error instanceof VerificationError) || error.code !== 'unavailable') return error;
  const description = await client.workflow
    .getHandle(windowId)
    .describe()
    .catch(() => undefined);
  const taken = description?.status.name === 'RUNNING' && (description.historyLength ?? 0) > 2;
  if (!taken) return error;
  return new VerificationError(
    'pending',
    'the send is still under way: read the window for its outcome',
    undefined,
    windowId,
  );
}

/** No window, or a closed one, whatever closed it: one answer, so nothing is learnt about a target. */
function noWindow(windowId: string): CheckCodeResult {
  return { status: 'expired_or_not_found', windowId, checksUsed: 0, checksLeft: 0 };
}

/**
 * A keyed check that found the window closed: a retry of the check that closed it (same key, same
 * request) gets that check's answer again; the key used for another request is refused.
 */
async function keyedAnswerOfClosedWindow(
  handle: WorkflowHandle<typeof verificationWorkflow>,
  { keyHash, requestHash }: IdempotencyBinding,
): Promise<CheckCodeResult> {
  const final = await handle.result().catch(() => undefined);
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

/**
 * The window of a target as it stands (or as it ended): attempts, delivery statuses, checks,
 * deadline and outcome.
 *
 * @throws VerificationError `not_found` when the target never had a window, `unavailable`.
 */
export async function getVerification(
  client: Client,
  target: Target,
  options: VerificationClientOptions = configuredOptions(),
): Promise<VerificationState> {
  return getVerificationById(client, windowIdOf(normalize(target), options.idKey), options);
}

/** {@link getVerification} by the window's ID (the workflow ID). */
export async function getVerificationById(
  client: Client,
  windowId: string,
  options: Pick<VerificationClientOptions, 'callTimeoutMs'> = configuredOptions(),
): Promise<VerificationState> {
  const handle = client.workflow.getHandle<typeof verificationWorkflow>(windowId);
  return call(client, options, async () => {
    const { status } = await handle.describe();
    // A completed window's result is its final state, readable without a worker.
    if (status.name === 'COMPLETED') return handle.result();
    return handle.query(stateQuery);
  });
}

/**
 * Closes the target's open window without verifying it.
 *
 * @throws VerificationError `not_found` when no window is open, `unavailable`.
 */
export async function cancelVerification(
  client: Client,
  target: Target,
  options: VerificationClientOptions = configuredOptions(),
): Promise<VerificationState> {
  return cancelVerificationById(client, windowIdOf(normalize(target), options.idKey), options);
}

/** {@link cancelVerification} by the window's ID (the workflow ID). */
export async function cancelVerificationById(
  client: Client,
  windowId: string,
  options: Pick<VerificationClientOptions, 'callTimeoutMs'> = configuredOptions(),
): Promise<VerificationState> {
  const handle = client.workflow.getHandle(windowId);
  const updateId = randomUUID();
  return call(client, options, () => handle.executeUpdate(cancelUpdate, { updateId }));
}

/**
 * Runs a Temporal call under the helpers' deadline and turns its failures into VerificationErrors.
 * A call the server aborted before the workflow saw it (see {@link isAbortedUpdate}), or one
 * `retryIf` accepts, is sent again (a fresh operation, the same update ID) until the deadline.
 */
async function call<T>(
  client: Client,
  options: Pick<VerificationClientOptions, 'callTimeoutMs'>,
  fn: () => Promise<T>,
  retryIf: (error: unknown) => boolean = () => false,
): Promise<T> {
  // p-retry ships only as an ES module; this package is CommonJS.
  const { default: pRetry } = await import('p-retry');
  const deadline = Date.now() + options.callTimeoutMs;
  try {
    return await pRetry(() => client.connection.withDeadline(deadline, fn), {
      retries: Infinity,
      minTimeout: 50,
      maxTimeout: 1_000,
      maxRetryTime: options.callTimeoutMs,
      shouldRetry: ({ error }) => isAbortedUpdate(error) || retryIf(error),
    });
  } catch (error) {
    throw toVerificationError(error, options.callTimeoutMs);
  }
}

/**
 * The server aborts an update when the workflow task carrying it fails — when the window tried to
 * close while a webhook signal arrived (`UnhandledCommand`), or when the worker running it died and
 * the task is being retried ("in failed state"). The update never reached the history, so sending it
 * again is safe; the next task sees it.
 */
function isAbortedUpdate(error: unknown): boolean {
  const grpc = grpcErrorSchema.safeParse(error instanceof Error && error.cause ? error.cause : error);
  return (
    grpc.success &&
    grpc.data.code === GrpcStatus.FAILED_PRECONDITION &&
    /workflow task (failure|in failed state)/i.test(grpc.data.message)
  );
}

/** A send refused because the window has just closed (its run is completing): the next try opens a new one. */
function isClosedWindowRefusal(error: unknown): boolean {
  return (
    error instanceof WorkflowUpdateFailedError &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === rejection.windowClosed
  );
}

/** The part of a gRPC error the helpers read. */
const grpcErrorSchema = z.object({ code: z.number(), message: z.string() });

function toVerificationError(error: unknown, timeoutMs: number): unknown {
  if (error instanceof VerificationError) return error;
  if (error instanceof WorkflowNotFoundError || isCompletedOrMissing(error)) {
    return new VerificationError('not_found', 'no verification window is open for that target');
  }
  if (isGrpcDeadlineError(error) || error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return new VerificationError(
      'unavailable',
      `no answer within ${timeoutMs} ms: is a worker running on the task queue?`,
    );
  }
  if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
    return fromFailure(error.cause);
  }
  return error;
}

const retryDetailsSchema = z.object({ retryAfterSeconds: z.number().optional() });

/** Maps the failure types the workflow rejects with (see `rejection`) to error codes. */
function fromFailure(failure: ApplicationFailure): VerificationError {
  const retryAfterSeconds = retryDetailsSchema.safeParse(failure.details?.[0]).data?.retryAfterSeconds;
  switch (failure.type) {
    case rejection.prematureRetry:
      return new VerificationError('premature_retry', failure.message, retryAfterSeconds);
    case rejection.targetRateLimited:
      return new VerificationError('target_rate_limited', failure.message, retryAfterSeconds);
    case rejection.tooManyAttempts:
      return new VerificationError('too_many_attempts', failure.message);
    case rejection.tooManyChecks:
      return new VerificationError('too_many_checks', failure.message);
    case rejection.invalidCode:
      return new VerificationError('invalid_code', failure.message);
    case rejection.windowClosed:
      return new VerificationError('not_found', failure.message);
    case rejection.idempotencyKeyReused:
      return new VerificationError('idempotency_key_reused', failure.message);
    case 'Prelude.invalid_request':
      return new VerificationError('invalid_request', failure.message);
    case 'Prelude.auth':
    case 'Prelude.invalid_response':
      return new VerificationError('prelude_error', failure.message);
    default:
      return new VerificationError('prelude_unavailable', failure.message);
  }
}

/** gRPC NOT_FOUND: no such workflow, or an update sent to one that has already completed. */
function isCompletedOrMissing(error: unknown): boolean {
  const grpc = grpcErrorSchema.safeParse(error instanceof Error && error.cause ? error.cause : error);
  return grpc.success && grpc.data.code === GrpcStatus.NOT_FOUND;
}
