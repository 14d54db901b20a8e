/**
 * The guards a phone send passes before anything about it is written or sent: the country
 * allow-list (decided here, from the number alone), then one update to the shard of the country's
 * budget that counts the number's block, which also applies the per-IP, per-device and per-block
 * caps. A refusal is the update's validator's: nothing reaches a history, no window opens and
 * Prelude is not called.
 */
import { createHash, createHmac } from 'node:crypto';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { userFacingWorkflowTaskTimeout } from '../../workflows/retry-policies';
import { sendGuardWorkflow } from '../../workflows/send-guard';
import {
  guardSendUpdate,
  releaseGuardSignal,
  takeLeaseUpdate,
  sendGuardIdPrefix,
  type GuardFlag,
  type GuardGrant,
  type GuardGrantRef,
  type GuardRelease,
  type GuardRequest,
  type ShardLimits,
  shardRunEvents,
} from '../../workflows/send-guard-messages';
import type { Target } from '../prelude/schemas';
import type { StartVerificationRequest } from '../client/schemas';
import { call, noAnswer, type CallOptions } from '../client/calls';
import { VerificationError, type VerificationErrorCode } from '../client/errors';
import { verificationErrors } from '../errors';
import { inLane } from './lanes';
import { admissionLeasesOf, type AdmissionLeases, type LocalAdmission, type TakeLease } from './leases';
import { blockOf, isExempt, regionOf, shardOf, shareOf } from './ranges';
import { countryBudget, shardsOf, type SendGuardSettings } from './settings';

/** The error codes of a send a guard refused. */
export const guardErrorCodes = [
  'country_not_allowed',
  'country_budget_exhausted',
  'ip_rate_limited',
  'device_rate_limited',
  'number_block_velocity',
] as const satisfies readonly VerificationErrorCode[];

/** What the guards need of the helpers' options. */
export interface GuardOptions extends CallOptions {
  taskQueue: string;
  idKey: string | null;
  guards: SendGuardSettings;
}

/** A send the guards let through, and what they noticed. */
export interface GuardPass {
  /** The country judged, when the send was a phone send the guards applied to. */
  country?: string;
  flags: GuardFlag[];
}

/** A grant the send can give back if it sends nothing after all (see {@link giveBackGrant}). */
export interface GuardGrantHeld {
  workflowId: string;
  release: Omit<GuardRelease, 'refusal'>;
  /** The grant was this process's, under its admission lease (see src/guards/leases.ts). */
  local?: LocalAdmission;
}

/**
 * The grant as the send's window carries it: the window tells the shard through it when the send
 * sent more than one code (attempts whose answers were lost), so that the guards count every SMS.
 */
export function grantRefOf({ workflowId, release }: GuardGrantHeld): GuardGrantRef {
  const { requestId, at, block, numberKey, ipKey, deviceKey } = release;
  return {
    shardId: workflowId,
    requestId,
    at,
    block,
    numberKey,
    ...(ipKey ? { ipKey } : {}),
    ...(deviceKey ? { deviceKey } : {}),
  };
}

/** What {@link guardSend} answers: the pass, and the grant it holds when the shard counted the send. */
export interface GuardedSend {
  pass: GuardPass;
  grant?: GuardGrantHeld;
}

/** The longest a grant's release waits: it is a follow-up of an answer already decided. */
const releaseTimeoutMs = 2_000;

/** The workflow ID of one shard of a country's guard. */
export function guardShardId(taskQueue: string, country: string, shard: number): string {
  return `${sendGuardIdPrefix}${taskQueue}-${country}-${shard}`;
}

/** The guard shard that counts the sends to a phone number (in E.164). */
export function guardShardOf(
  e164: string,
  { taskQueue, guards }: Pick<GuardOptions, 'taskQueue' | 'guards'>,
) {
  const country = regionOf(e164);
  const shard = shardOf(blockOf(e164, guards.block.trailingDigits), shardsOf(guards, country));
  return { country, shard, workflowId: guardShardId(taskQueue, country, shard) };
}

/** How a guard shard is started by the first update that finds it not running (Update-with-Start). */
export function guardShardStart(
  taskQueue: string,
  { country, shard, workflowId }: { country: string; shard: number; workflowId: string },
) {
  return new WithStartWorkflowOperation(sendGuardWorkflow, {
    workflowId,
    taskQueue,
    args: [{ country, shard, runEvents: shardRunEvents }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    // Every phone send waits on this entity: a task stuck on a dead worker must move on fast.
    workflowTaskTimeout: userFacingWorkflowTaskTimeout,
  });
}

/** The limits shard `shard` of `country` applies, the country's budget split evenly. */
export function shardLimits(settings: SendGuardSettings, country: string, shard: number): ShardLimits {
  const shards = shardsOf(settings, country);
  return {
    budget: {
      sends: shareOf(countryBudget(settings, country), shards, shard),
      periodSeconds: settings.country.periodSeconds,
      burst: shareOf(settings.country.burst, shards, shard),
      burstSeconds: settings.country.burstSeconds,
    },
    ip: settings.ip,
    device: settings.device,
    block: {
      numbers: settings.block.numbers,
      periodSeconds: settings.block.periodSeconds,
      mode: settings.block.mode,
    },
  };
}

/**
 * Judges a send before it happens.
 *
 * @throws VerificationError `country_not_allowed`, `country_budget_exhausted`, `ip_rate_limited`,
 *   `device_rate_limited`, `number_block_velocity` (each with `retryAfterSeconds` but the first),
 *   `unavailable`.
 */
export async function guardSend(
  client: Client,
  {
    target,
    signals,
    requestId,
  }: { target: Target; signals?: StartVerificationRequest['signals']; requestId: string },
  options: GuardOptions,
): Promise<GuardedSend> {
  const { guards } = options;
  if (guards.mode === 'off' || target.type !== 'phone_number' || isExempt(target.value, guards.exempt)) {
    return { pass: { flags: [] } };
  }
  const { country, shard, workflowId } = guardShardOf(target.value, options);
  if (guards.countries !== '*' && !guards.countries.includes(country)) {
    throw new VerificationError('country_not_allowed', 'codes are not sent to numbers of this country');
  }
  const block = blockOf(target.value, guards.block.trailingDigits);
  const keyOf = (kind: string, value: string | undefined) =>
    value === undefined || value === '' ? undefined : hashed(kind, value, options.idKey);
  const request: GuardRequest = {
    requestId,
    block,
    numberKey: hashed('number', target.value, options.idKey),
    ipKey: keyOf('ip', signals?.ip),
    deviceKey: keyOf('device', signals?.device_id),
    limits: shardLimits(guards, country, shard),
  };
  /** What a grant counted at `at` gives back, if its send sends nothing. */
  const releaseOf = (at: number) => {
    const { numberKey, ipKey, deviceKey } = request;
    return { requestId, at, block, numberKey, ipKey, deviceKey };
  };
  const leases = guards.admission === 'lease' ? admissionLeasesOf(client) : undefined;
  if (leases) {
    const local = await leases.admitOrWait(workflowId, request);
    if (local === 'repeat') return { pass: { country, flags: [] } };
    if (local) {
      return {
        pass: { country, flags: [] },
        grant: { workflowId, release: releaseOf(local.admission.at), local },
      };
    }
  }
  const shardCalls = callsToShard(client, options, { country, shard, workflowId }, request.limits);
  const grant = leases
    ? await judgedWithLease(leases, shardCalls, workflowId, request)
    : await shardCalls.judge(request);
  const pass = { country, flags: grant.flags };
  if (grant.at === undefined) return { pass };
  return { pass, grant: { workflowId, release: releaseOf(grant.at) } };
}

/** How a send reaches its guard shard: its lane, its deadline, Update-with-Start. */
function callsToShard(
  client: Client,
  options: GuardOptions,
  shardRef: { country: string; shard: number; workflowId: string },
  limits: ShardLimits,
) {
  /** Calls the shard in its lane; the wait for the lane counts against the call's deadline. */
  const inShardLane = <T>(fn: () => Promise<T>, timeoutMs = options.callTimeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    return inLane(shardRef.workflowId, () => {
      const left = deadline - Date.now();
      if (left <= 0) throw noAnswer(timeoutMs);
      return call(client, { callTimeoutMs: left }, fn, { notFound: 'the send guard did not answer' });
    });
  };
  const start = () => guardShardStart(options.taskQueue, shardRef);
  const takeLease: TakeLease = (lease, timeoutMs) =>
    inShardLane(
      () =>
        // Its own ID: a request asked again in the same run is answered from Temporal's record.
        client.workflow.executeUpdateWithStart(takeLeaseUpdate, {
          args: [{ ...lease, limits }],
          updateId: `lease-${lease.leaseId}`,
          startWorkflowOperation: start(),
        }),
      timeoutMs,
    );
  const judge = (request: GuardRequest): Promise<GuardGrant> =>
    inShardLane(() =>
      // No update ID of ours: the shard deduplicates by `requestId` itself. Temporal would answer a
      // repeated update ID from its own record without asking the shard, and so let a request whose
      // grant was given back through uncounted.
      client.workflow.executeUpdateWithStart(guardSendUpdate, {
        args: [request],
        startWorkflowOperation: start(),
      }),
    );
  return { takeLease, judge };
}

/**
 * Has the shard judge a send its process's lease could not admit. With no usable lease, the request
 * asks for one (and reports the leases ended); else the lease lends the send a unit, the reserve of
 * its keys, and reports what it admitted so far (see src/guards/leases.ts).
 */
async function judgedWithLease(
  leases: AdmissionLeases,
  { takeLease, judge }: ReturnType<typeof callsToShard>,
  shardId: string,
  request: GuardRequest,
): Promise<GuardGrant> {
  const ask = leases.wantsLease(shardId) ? leases.begin(shardId) : undefined;
  const lent = ask ? undefined : leases.lend(shardId, request);
  if (ask) request.lease = { leaseId: ask.leaseId, reports: ask.reports, units: ask.units };
  if (lent) {
    request.leaseId = lent.leaseId;
    if (lent.takes.length > 0) request.leaseTakes = lent.takes;
    if (lent.interim.length > 0) request.interim = lent.interim;
  }
  let grant: GuardGrant;
  try {
    grant = await judge(request);
  } catch (error) {
    if (ask) leases.settle(shardId, ask, undefined, takeLease);
    // Refused, the shard changed nothing: what the lease lent comes back. (No answer: it stays
    // lent, the side of fewer sends.)
    if (lent && error instanceof VerificationError && error.code !== 'unavailable') {
      leases.unlend(shardId, lent, request);
    }
    throw error;
  }
  // A repeated request (counted before) is answered without a lease: the reports go again.
  if (ask) leases.settle(shardId, ask, grant.at === undefined ? undefined : grant.lease, takeLease);
  if (lent && grant.at !== undefined) leases.reported(shardId, lent);
  return grant;
}

/**
 * The refusals of a send that say no code went out and that any send to the number would meet
 * while they hold: the window's state (a cooldown, every send used) and the target's limits. (A
 * create whose earlier attempt may have sent a code, refused as premature, is answered as sent: see
 * VerificationWindow's #afterRefusedSend.) A refusal of the request itself (a reused
 * Idempotency-Key, a create Prelude found malformed) stays counted: the shard could not repeat it
 * to the number's other requests.
 */
const repeatableRefusals = ['premature_retry', 'too_many_attempts', 'target_rate_limited'] as const;

function isRepeatableRefusal(
  error: unknown,
): error is VerificationError & { code: (typeof repeatableRefusals)[number] } {
  return error instanceof VerificationError && (repeatableRefusals as readonly string[]).includes(error.code);
}

/**
 * Gives a grant back when its send sent nothing: refused with one of {@link repeatableRefusals},
 * the refusal then costs no share of the country's budget, nor of the IP's or device's, and the
 * shard answers the number's next sends as the window did while that answer holds; failed with no
 * code sent (`nothingSent`: Prelude answered every attempt with an error), its share of the
 * country's budget comes back (see GuardRelease). Any other failure, and a release that fails,
 * leave the send counted, the side of fewer sends; the caller's answer does not change.
 */
export async function giveBackGrant(
  client: Client,
  grant: GuardGrantHeld | undefined,
  error: unknown,
): Promise<void> {
  if (!grant) return;
  let release: GuardRelease;
  if (isRepeatableRefusal(error)) {
    const {
      description,
      failureTypes: [type],
    } = verificationErrors[error.code];
    release = {
      ...grant.release,
      refusal: {
        type,
        // The table's words, not the refusal's: Prelude's own message may quote the number, and
        // the shard holds nothing personal in clear.
        message: description,
        // Only the cooldown's wait is the window's to the second; the others are not repeated as waits.
        ...(error.code === 'premature_retry' && error.retryAfterSeconds !== undefined
          ? { retryAfterSeconds: error.retryAfterSeconds }
          : {}),
      },
    };
  } else if (error instanceof VerificationError && error.nothingSent === true) {
    release = grant.release;
  } else {
    return;
  }
  if (grant.local) {
    const refused = release.refusal !== undefined;
    const given = await admissionLeasesOf(client).giveBack(grant.local, refused);
    if (given === 'withdrawn') {
      // Never counted at the shard; a refusal is still news to it (for the number's next sends).
      if (!refused) return;
      release = { ...release, unreported: true };
    }
  }
  try {
    await call(
      client,
      { callTimeoutMs: releaseTimeoutMs },
      () => client.workflow.getHandle(grant.workflowId).signal(releaseGuardSignal, release),
      { notFound: 'the send guard did not answer' },
    );
  } catch {
    // Counted, as a send that went out: see above.
  }
}

/**
 * An HMAC key of an IP, a device ID or a number, as targets are keyed: what the guard entity holds
 * cannot be linked back without the ID key. (In plaintext mode a plain hash: still not in clear.)
 */
function hashed(kind: string, value: string, idKey: string | null): string {
  const mac = idKey === null ? createHash('sha256') : createHmac('sha256', idKey);
  return mac.update(`${kind}:${value}`).digest('hex').slice(0, 24);
}
