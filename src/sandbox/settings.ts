/**
 * The sandbox's knobs: read from configuration at start, changed at runtime with
 * `PUT /sandbox/config` (same names, camelCase, any subset).
 *
 * Among them `historyApi` (`SANDBOX_HISTORY_API`, default on): off, the History API
 * (`GET /v2/verification/phone/history/{id}`) answers 404 `not_found`, as for an account without
 * access to it, whose product must fall back to its own counts.
 *
 * Besides the configuration's settings, two knobs exist only at runtime. They make the sandbox
 * carry out a Verify call or a Notify send and then lose its answer, as when Prelude processed a
 * request and a crash or a network cut ate the reply (the client sees a network error, yet the code
 * or the message was sent, or the window converted). A dropped answer is a closed connection: the
 * sandbox destroys the socket without writing a byte.
 *
 * - `dropAnswerRate` (0..1, default 0): the share of `verification.create`, `verification.check`
 *   and `notify.send` calls whose answer is dropped, drawn at random per call.
 * - `dropNextAnswers` (default `{}`): deterministic drops, e.g.
 *   `{ "verification.create": 1, "verification.check": 2 }` drops the answers of the next create
 *   and of the next two checks. Each operation named in an update gets that count (0 cancels);
 *   operations not named keep theirs. `GET /sandbox/config` shows the counts still to drop.
 *
 * - `failNextCalls` (default `{}`): the next calls of each operation named are answered 500 and
 *   not carried out, as when Prelude itself failed, e.g. `{ "verification.check": 1 }`. Counted like
 *   `dropNextAnswers`; these calls are not in the call log.
 *
 * - `cutCheckRate` (0..1, default 0): the share of `verification.check` calls whose connection is
 *   closed before the engine sees them, drawn at random per call: a request cut on its way in. The
 *   client cannot tell it from a dropped answer, but nothing was carried out: no check was spent,
 *   and the call is not in the call log. A window must count such an attempt as no check, where it
 *   reads Prelude's record.
 * - `cutCreateRate` (0..1, default 0): the same for `verification.create` calls: no code was sent,
 *   and a window must count such an attempt as no send, where it reads Prelude's record.
 * - `cutNextCalls` (default `{}`): deterministic cuts of the next Verify creates or checks, counted
 *   like `dropNextAnswers` (`{ "verification.create": 1 }`), before any draw against the rates.
 *
 * The drops count only calls that reach the engine: past the API key, the injected 500 / 429 faults
 * (`failNextCalls`, `errorRate`, `rateLimitRate`) and request validation. Whatever the engine answered (`success`,
 * `retry`, `failure`, a 429 lifecycle refusal…) is what is lost. Every such call, dropped or not,
 * is in `GET /sandbox/calls`, with the answer it got or would have got.
 */
import { z } from 'zod';
import { fraction, valueShape } from '../env';
import { sandboxLiveSettings, type SandboxConfig } from './config';

/** The Prelude operations whose answers can be dropped. */
export const droppableOperations = ['verification.create', 'verification.check', 'notify.send'] as const;
export type DroppableOperation = (typeof droppableOperations)[number];

/** Knobs that exist only at runtime (not in the configuration file). */
export interface RuntimeKnobs {
  /** Share (0..1) of Verify creates and checks and Notify sends carried out whose answer is then dropped. */
  dropAnswerRate: number;
  /** How many of the next calls of each operation are carried out and their answers dropped. */
  dropNextAnswers: CallCounts;
  /** How many of the next calls of each operation are answered 500 without being carried out. */
  failNextCalls: CallCounts;
  /** Share (0..1) of Verify checks whose connection is closed before they are carried out. */
  cutCheckRate: number;
  /** Share (0..1) of Verify creates whose connection is closed before they are carried out. */
  cutCreateRate: number;
  /** How many of the next calls of each operation have their connection closed before they are carried out. */
  cutNextCalls: CallCounts;
}

/** A number of upcoming calls, by operation. */
type CallCounts = Partial<Record<DroppableOperation, number>>;

/** Live settings (everything in the configuration section but where the server listens). */
export type SandboxSettings = Omit<SandboxConfig, 'host' | 'port' | 'webhookPrivateKey'> & RuntimeKnobs;

const callCounts = z.partialRecord(z.enum(droppableOperations), z.number().int().min(0).max(10_000));

/** Body of `PUT /sandbox/config`: the configuration's live settings, with its limits, and the runtime knobs. */
export const settingsUpdateSchema = z
  .object({
    ...valueShape(sandboxLiveSettings),
    apiKey: sandboxLiveSettings.apiKey.value.nullable(),
    dropAnswerRate: fraction.value,
    cutCheckRate: fraction.value,
    cutCreateRate: fraction.value,
    dropNextAnswers: callCounts,
    failNextCalls: callCounts,
    cutNextCalls: callCounts,
  })
  .partial()
  .strict();
export type SettingsUpdate = z.output<typeof settingsUpdateSchema>;

/** The live settings from the configuration section. */
export function initialSettings(config: SandboxConfig): SandboxSettings {
  const { host: _host, port: _port, webhookPrivateKey: _key, ...settings } = config;
  return {
    ...settings,
    dropAnswerRate: 0,
    dropNextAnswers: {},
    failNextCalls: {},
    cutNextCalls: {},
    cutCheckRate: 0,
    cutCreateRate: 0,
  };
}

/**
 * Applies a validated update: `apiKey: null` unsets the key, `dropNextAnswers`, `failNextCalls` and
 * `cutNextCalls` merge by operation.
 */
export function applySettingsUpdate(settings: SandboxSettings, update: SettingsUpdate): void {
  const { apiKey, dropNextAnswers, failNextCalls, cutNextCalls, ...rest } = update;
  Object.assign(settings, rest);
  if (apiKey !== undefined) settings.apiKey = apiKey ?? undefined;
  if (dropNextAnswers) settings.dropNextAnswers = mergeCounts(settings.dropNextAnswers, dropNextAnswers);
  if (failNextCalls) settings.failNextCalls = mergeCounts(settings.failNextCalls, failNextCalls);
  if (cutNextCalls) settings.cutNextCalls = mergeCounts(settings.cutNextCalls, cutNextCalls);
}

function mergeCounts(current: CallCounts, update: CallCounts): CallCounts {
  const counts = { ...current, ...update };
  for (const operation of droppableOperations) if (!counts[operation]) delete counts[operation];
  return counts;
}

/** Spends one of `counts[operation]`; whether there was one. */
function takeOne(counts: CallCounts, operation: DroppableOperation): boolean {
  const left = counts[operation] ?? 0;
  if (left === 0) return false;
  if (left === 1) delete counts[operation];
  else counts[operation] = left - 1;
  return true;
}

/**
 * Whether the answer to this call of `operation` is to be dropped; spends one of
 * `dropNextAnswers` when it is, before any draw against `dropAnswerRate`.
 */
export function takeAnswerDrop(settings: SandboxSettings, operation: DroppableOperation): boolean {
  if (takeOne(settings.dropNextAnswers, operation)) return true;
  return settings.dropAnswerRate > 0 && Math.random() < settings.dropAnswerRate;
}

/**
 * Whether this call of `operation` is to be cut on its way in, unapplied: spends one of
 * `cutNextCalls` when it is, before any draw against `cutCheckRate` or `cutCreateRate`.
 */
export function takeCut(
  settings: SandboxSettings,
  operation: 'verification.create' | 'verification.check',
): boolean {
  if (takeOne(settings.cutNextCalls, operation)) return true;
  const rate = operation === 'verification.create' ? settings.cutCreateRate : settings.cutCheckRate;
  return rate > 0 && Math.random() < rate;
}

/** Whether this call of `operation` is to be answered 500 unapplied (spends one of `failNextCalls`). */
export function takeCallFailure(settings: SandboxSettings, operation: DroppableOperation): boolean {
  return takeOne(settings.failNextCalls, operation);
}

/** Settings as `GET /sandbox/config` shows them: the API key is only said to be set or not. */
export function publicSettings(settings: SandboxSettings) {
  const { apiKey, ...rest } = settings;
  return { ...rest, apiKeySet: apiKey !== undefined };
}
