/**
 * How every client helper calls Temporal: under the helpers' deadline, sending again what the server
 * aborted before the workflow saw it, and answering every failure it knows as a VerificationError.
 */
import { status as GrpcStatus, type ServiceError as GrpcServiceError } from '@grpc/grpc-js';
import {
  isGrpcDeadlineError,
  isGrpcServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type QueryDefinition } from '@temporalio/common';
import { z } from 'zod';
import { codeOfFailure, verificationErrors } from '../errors';
import { VerificationError } from './errors';
import { loadPRetry } from '../p-retry';

/** The deadline every helper's call runs under. */
export interface CallOptions {
  /** Deadline of each call; a missing worker gives an `unavailable` error instead of a hang. */
  callTimeoutMs: number;
}

/** What a call is about, for its retries and its errors. */
export interface CallSettings {
  /** The message of the `not_found` error: what there is none of. */
  notFound: string;
  /** Errors, beyond {@link isAbortedUpdate}, after which the call is sent again until the deadline. */
  retryIf?: (error: unknown) => boolean;
}

/**
 * Runs a Temporal call under the helpers' deadline and turns its failures into VerificationErrors.
 * A call the server aborted before the workflow saw it ({@link isAbortedUpdate}), or one `retryIf`
 * accepts, is sent again (`fn` makes a fresh operation each time; an update keeps its ID) until the
 * deadline.
 */
export async function call<T>(
  client: Client,
  options: CallOptions,
  fn: () => Promise<T>,
  settings: CallSettings,
): Promise<T> {
  const { default: pRetry } = await loadPRetry();
  const deadline = Date.now() + options.callTimeoutMs;
  const retryIf = settings.retryIf ?? (() => false);
  try {
    return await pRetry(() => client.connection.withDeadline(deadline, fn), {
      retries: Infinity,
      minTimeout: 50,
      maxTimeout: 1_000,
      maxRetryTime: options.callTimeoutMs,
      shouldRetry: ({ error }) => isAbortedUpdate(error) || retryIf(error),
    });
  } catch (error) {
    throw toVerificationError(error, { ...settings, timeoutMs: options.callTimeoutMs });
  }
}

/**
 * A run's state: a completed run's result (its final state, readable without a worker), else what
 * the state query answers (an open run as it stands; a run that ended otherwise, replayed by a worker).
 */
export async function readState<S>(
  handle: Pick<WorkflowHandle, 'describe' | 'query'> & { result(): Promise<S> },
  query: QueryDefinition<S>,
): Promise<S> {
  const { status } = await handle.describe();
  return status.name === 'COMPLETED' ? handle.result() : handle.query(query);
}

/**
 * A failure as a VerificationError when it is one the helpers know: no such run, no answer in time,
 * a refusal of the window. Anything else is returned as it is (a 500 for the service).
 */
export function toVerificationError(
  error: unknown,
  { notFound, timeoutMs }: Pick<CallSettings, 'notFound'> & { timeoutMs?: number },
): unknown {
  if (error instanceof VerificationError) return error;
  if (isNotFound(error)) return new VerificationError('not_found', notFound);
  if (
    isGrpcDeadlineError(error) ||
    error instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
    // Still aborted when the deadline came: no worker got the update through in time.
    isAbortedUpdate(error)
  ) {
    return noAnswer(timeoutMs);
  }
  if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
    return fromFailure(error.cause);
  }
  return error;
}

/** A call that got no answer in time, as the helpers say it. */
export function noAnswer(timeoutMs?: number): VerificationError {
  const within = timeoutMs === undefined ? '' : ` within ${timeoutMs} ms`;
  return new VerificationError('unavailable', `no answer${within}: is a worker running on the task queue?`);
}

/** No such workflow, or an update sent to one that has already completed: gRPC NOT_FOUND. */
export function isNotFound(error: unknown): boolean {
  return error instanceof WorkflowNotFoundError || grpcStatusOf(error)?.code === GrpcStatus.NOT_FOUND;
}

/**
 * The server aborts an update when the workflow task carrying it fails — when the window tried to
 * close while a webhook signal arrived (`UnhandledCommand`), or when the worker running it died and
 * the task is being retried ("in failed state"). The update never reached the history, so sending it
 * again is safe; the next task sees it.
 *
 * The server answers FAILED_PRECONDITION for other refusals too, with no error detail that tells this
 * one apart: its message is the only signal, read here and nowhere else.
 */
function isAbortedUpdate(error: unknown): boolean {
  const grpc = grpcStatusOf(error);
  return (
    grpc?.code === GrpcStatus.FAILED_PRECONDITION &&
    /workflow task (failure|in failed state)/i.test(grpc.message)
  );
}

/**
 * The gRPC error behind a failure: the error itself (Update-with-Start rethrows the server's), or the
 * nearest of its causes (the SDK's `ServiceError` and its update errors wrap it).
 */
function grpcStatusOf(error: unknown): GrpcServiceError | undefined {
  for (let at: unknown = error; at instanceof Error; at = at.cause) {
    if (isGrpcServiceError(at)) return at;
  }
  return undefined;
}

/** The details a refusal carries (see the workflow's `refusal`). */
const retryDetailsSchema = z.object({ retryAfterSeconds: z.number().optional() });
/** The mark of a send that sent nothing (see the workflow's `unsentSendFailure`). */
const unsentDetailsSchema = z.object({ nothingSent: z.literal(true) });

/** The error a failure of the window means, by the error table. */
function fromFailure(failure: ApplicationFailure): VerificationError {
  const code = codeOfFailure(failure.type);
  const retryAfterSeconds =
    'retryAfter' in verificationErrors[code]
      ? retryDetailsSchema.safeParse(failure.details?.[0]).data?.retryAfterSeconds
      : undefined;
  const nothingSent = unsentDetailsSchema.safeParse(failure.details?.[0]).success || undefined;
  return new VerificationError(code, failure.message, retryAfterSeconds, undefined, nothingSent);
}
