/**
 * The per-target limits entity's contract: one long-lived workflow per target key
 * (`target-limits-<key>`) that grants windows and sends across every window of the target, so that a
 * number cannot be pumped with SMS by opening window after window (toll fraud). It also makes the
 * reports of the target's closed windows (outcome-report.ts), so that no workflow runs per report.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { OutcomeReport } from './outcome-report';

/** Every limits entity's workflow ID is this prefix followed by the target key. */
export const targetLimitsIdPrefix = 'target-limits-';

/** How many windows and sends a target gets per period (`VERIFY_*_PER_TARGET`). */
export interface TargetLimits {
  maxWindows: number;
  maxSends: number;
  periodSeconds: number;
}

/** A send the window asks leave for. */
export interface ReserveSendRequest {
  /** `<window run ID>:<send number>`: the same reservation asked twice is granted once. */
  reservationId: string;
  /** The first send of a window also opens a window. */
  opensWindow: boolean;
  /** The limits in force (configuration may change between requests; the newest applies). */
  limits: TargetLimits;
  /**
   * Who asks: the window's send (`call`, its update ID), in one attempt run by one workflow task
   * (`execution`, that task's time), knowing its earlier attempts' executions (`known`). A workflow
   * task lost to a crash after its attempt reached Prelude runs the attempt again, at another time:
   * the entity tells it how many executions of its call it does not know of asked
   * (`earlierExecutions`), each of which may have sent a code.
   */
  asker?: Asker;
}

/** Who asks a reservation (see {@link ReserveSendRequest.asker}). */
export interface Asker {
  call: string;
  execution: number;
  known: number[];
}

/** A granted reservation: what is left, and how many other executions of the same call asked it. */
export interface ReservedSend extends TargetUsage {
  earlierExecutions?: number;
}

/** What is left of the target's allowance after a grant (also the entity's `usage` query). */
export interface TargetUsage {
  windowsUsed: number;
  windowsLeft: number;
  sendsUsed: number;
  sendsLeft: number;
  /** ISO time the oldest counted window or send leaves the period, if any is counted. */
  nextReleaseAt?: string;
}

/**
 * The usage of a target whose counted windows and sends (times in ms, inside the period) are these:
 * the entity's answer, and a first grant's before the entity runs (activities/limits.ts).
 */
export function usageOf(
  counted: { windows: number[]; sends: number[] },
  limits: TargetLimits | undefined,
): TargetUsage {
  const oldest = Math.min(...counted.windows, ...counted.sends);
  return {
    windowsUsed: counted.windows.length,
    windowsLeft: Math.max(0, (limits?.maxWindows ?? 0) - counted.windows.length),
    sendsUsed: counted.sends.length,
    sendsLeft: Math.max(0, (limits?.maxSends ?? 0) - counted.sends.length),
    nextReleaseAt: Number.isFinite(oldest)
      ? new Date(oldest + (limits?.periodSeconds ?? 0) * 1000).toISOString()
      : undefined,
  };
}

/** The entity's input, and what it carries over when it continues as new. */
export interface TargetLimitsInput {
  targetKey: string;
  /** Times (ms) of the windows and sends still inside the period. */
  windows?: number[];
  sends?: number[];
  /** Recent reservation IDs, so that a retried reservation after continue-as-new is not counted twice. */
  recent?: string[];
  /** Who asked the recent reservations: `<reservation ID> <call> <execution>` (see `asker`). */
  askers?: string[];
  /** The codes recent sends were told to have sent, by reservation ID (see {@link CodesSent}). */
  told?: [reservationId: string, codes: number][];
  limits?: TargetLimits;
  /** Closed windows' reports not made yet. */
  reports?: OutcomeReport[];
}

/** The failure type a refused reservation carries (with `retryAfterSeconds` in its details). */
export const targetRateLimited = 'target_rate_limited';

/** Asks leave for one send (and a window, for a window's first send); refused over the limits. */
export const reserveSendUpdate = defineUpdate<ReservedSend, [ReserveSendRequest]>('reserveSend');

/** How an asker of a reservation is remembered (see {@link TargetLimitsInput.askers}). */
export function askerEntry(
  reservationId: string,
  { call, execution }: Pick<Asker, 'call' | 'execution'>,
): string {
  return `${askersOfCall(reservationId, call)}${execution}`;
}

/** What every remembered asker of one call of a reservation starts with. */
export function askersOfCall(reservationId: string, call: string): string {
  return `${reservationId} ${call} `;
}
/** The target's usage as it stands. */
export const targetUsageQuery = defineQuery<TargetUsage>('usage');
/**
 * How many codes a send of a window sent in all, by the window's count, where that differs from the
 * one its granted reservation counted: attempts whose answers were lost, each of which Prelude
 * applied, or a send whose every attempt failed before the window heard whether the reservation
 * was granted. The entity counts the send that many times (signalled with start, like a report).
 * Told again, it counts the most it was told: a run of the window that a crash cut short may have
 * told a count that its next run, knowing of more lost attempts, raises.
 */
export interface CodesSent {
  /** The send's reservation ({@link ReserveSendRequest.reservationId}). */
  reservationId: string;
  /** The codes it sent, by the window's count (at least 1). */
  codes: number;
}
export const codesSentSignal = defineSignal<[CodesSent]>('codesSent');
/**
 * A granted send that sent nothing: every attempt of it that ran was answered by Prelude with an
 * error (an outage, a refusal of the request), so no code went out, and the target's window and
 * send come back. Without this, a user retrying through a Prelude outage would be locked out for
 * the period with no code received. Refused (writing nothing) when the entity cannot be sure:
 * another execution of the same call, one the window does not know of (a workflow task lost to a
 * crash), asked the reservation, and may have sent a code ({@link sendMayHaveGone}); or the send
 * was told to have sent codes. A reservation the entity does not hold (never granted, or given
 * back already) is refused as {@link sendNotCounted}: nothing was sent through it either.
 */
export interface UnsentSend {
  /** The send's reservation ({@link ReserveSendRequest.reservationId}). */
  reservationId: string;
  /** Whether the reservation opened a window (the window's first send): the window comes back too. */
  opensWindow: boolean;
  /** The send's call, and every execution of it the window knows of ({@link Asker}). */
  asker: Pick<Asker, 'call' | 'known'>;
}
export const giveBackSendUpdate = defineUpdate<TargetUsage, [UnsentSend]>('giveBackSend');
/** The failure type of a give-back refused because a code may have gone out after all. */
export const sendMayHaveGone = 'send_may_have_gone';
/** The failure type of a give-back refused because the entity holds no such reservation. */
export const sendNotCounted = 'send_not_counted';
/** A closed window's report, for the entity to make (signalled with start: the entity may have ended). */
export const outcomeReportSignal = defineSignal<[OutcomeReport]>('reportOutcome');
/**
 * Drops every report not made yet and continues as new at once, so that the target's personal data
 * leaves the entity's history (forgetting a target); the counts are kept.
 */
export const forgetReportsUpdate = defineUpdate<void, []>('forgetReports');
