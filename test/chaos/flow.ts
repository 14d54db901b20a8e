/**
 * One verification flow of a chaos run, over HTTP as a backend runs it for one user: open a window,
 * read the code from the sandbox's inbox (with `resend`, ask for it again and read it again), send a
 * wrong code and the same request again (same Idempotency-Key), send the right code, read the window
 * until it is verified. Every POST carries an Idempotency-Key. Like a real client it retries what
 * failed because a process was down (connection errors, 5xx) or is still under way (202 `pending`),
 * with backoff and the same key; every other answer is data the run judges.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where a flow sends its requests, and its deadlines. */
export interface FlowContext {
  serviceUrl: string;
  sandboxUrl: string;
  apiToken: string;
  /** Aborts the flow (the run's deadline, Ctrl-C). */
  signal: AbortSignal;
  /** From the start of the flow until its right-code check is first sent. */
  openBudgetMs: number;
  /** From the right-code check's first send until the window must read `verified`. */
  stuckAfterMs: number;
  /** A code in Prelude's format that is never the right one. */
  wrongCode: string;
  /**
   * The user asks for the code again once it has come (a resend in the open window), where a window
   * takes `maxSends` sends (`VERIFY_MAX_SENDS`).
   */
  resend?: { maxSends: number };
}

/** The steps of a flow, in order. */
export type StepName =
  'send' | 'read_code' | 'resend' | 'wrong_check' | 'replay' | 'right_check' | 'read_window';

/** One step: when it ran and which of its requests failed before it got its answer. */
export interface StepRecord {
  name: StepName;
  /** `Date.now()` when its first request was sent. */
  start: number;
  /** When it got the answer it acts on; absent if it never did. */
  end?: number;
  /** Whether it goes through the HTTP service (and so through Temporal and the worker). */
  viaService: boolean;
  /** Requests of the step that failed (connection error, 5xx): when each was sent. */
  failedAt: number[];
}

/** One HTTP request of a flow, for the evidence of a flow that went wrong. */
export interface RequestRecord {
  step: StepName;
  sentAt: string;
  ms: number;
  status?: number;
  /** The answer's `status` (success, failure, …) or error `code`. */
  answer?: string;
  error?: string;
}

/**
 * How a flow ended. `checks_used_up`: the right code, or the wrong one, met its window closed
 * `max_checks`, every check spent (by the wrong code's answers lost and asked again): Prelude's own
 * answer when its log shows those checks, which the run's accounting confirms (or makes the flow
 * `wrong_outcome`).
 */
export type Verdict = 'correct' | 'checks_used_up' | 'wrong_outcome' | 'stuck';

/** Everything a flow saw. */
export interface FlowResult {
  index: number;
  phone: string;
  /** The window's ID as the service named it. */
  windowId?: string;
  verdict: Verdict;
  /** Why it is not `correct`. */
  reason?: string;
  /** Oddities that do not change the verdict (e.g. a first send answered `retry`). */
  notes: string[];
  startedAt: number;
  finishedAt: number;
  rightCheckSentAt?: number;
  steps: StepRecord[];
  requests: RequestRecord[];
  /** The answers judged, by step. */
  answers: Partial<Record<StepName, unknown>>;
  /** The window as last read (`GET /verifications/:id`). */
  window?: WindowAnswer;
}

/** The parts of `GET /verifications/:id` the run judges. */
export interface WindowAnswer {
  id: string;
  status: string;
  attempts: { trigger?: string; [field: string]: unknown }[];
  checks_used: number;
  checks_left: number;
  [field: string]: unknown;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

interface RequestSpec {
  method: 'GET' | 'POST';
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The flow ran out of time (or the run was aborted) before a step got an answer. */
class OutOfTime extends Error {}

/** A definite answer that is not what a correct flow gets. */
class WrongAnswer extends Error {}

/** The right code was refused with the window's checks all spent (see {@link Verdict}). */
class ChecksUsedUp extends Error {}

/** Runs one flow for `phone`; never throws. */
export async function runFlow(index: number, phone: string, ctx: FlowContext): Promise<FlowResult> {
  const result: FlowResult = {
    index,
    phone,
    verdict: 'stuck',
    notes: [],
    startedAt: Date.now(),
    finishedAt: 0,
    steps: [],
    requests: [],
    answers: {},
  };
  const target = { type: 'phone_number', value: phone };
  const auth = { authorization: `Bearer ${ctx.apiToken}` };
  let deadline = result.startedAt + ctx.openBudgetMs;

  /** Sends `next()` until it gets an answer that is not a transient failure, or time runs out. */
  const step = async (
    name: StepName,
    next: (previous?: Answer) => RequestSpec,
    { viaService = true }: { viaService?: boolean } = {},
  ): Promise<Answer> => {
    const record: StepRecord = { name, start: Date.now(), viaService, failedAt: [] };
    result.steps.push(record);
    let previous: Answer | undefined;
    for (let attempt = 0; ; attempt += 1) {
      const spec = next(previous);
      const sentAt = Date.now();
      const remaining = deadline - sentAt;
      if (remaining <= 0 || ctx.signal.aborted) throw new OutOfTime(`${name}: no answer in time`);
      const log: RequestRecord = { step: name, sentAt: new Date(sentAt).toISOString(), ms: 0 };
      result.requests.push(log);
      let answer: Answer | undefined;
      try {
        const response = await fetch(spec.url, {
          method: spec.method,
          headers: {
            ...spec.headers,
            ...(spec.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.min(remaining, 60_000))]),
        });
        const text = await response.text();
        answer = { status: response.status, body: parseBody(text) };
        log.status = answer.status;
        log.answer = String(answer.body.status ?? answer.body.code ?? '');
      } catch (error) {
        log.error = describeFetchError(error);
      }
      log.ms = Date.now() - sentAt;
      // A process down or restarting: connection refused or reset, 503 `unavailable`, any 5xx; or a
      // send still under way (202 `pending`), asked again with the same key until it has an answer.
      if (answer && answer.status < 500 && !(answer.status === 202 && answer.body.status === 'pending')) {
        record.end = Date.now();
        return answer;
      }
      record.failedAt.push(sentAt);
      previous = answer;
      const pauseMs = Math.min(2_000, 200 * 2 ** attempt) * (0.75 + Math.random() / 2);
      await sleep(Math.min(pauseMs, Math.max(0, deadline - Date.now())), undefined, {
        signal: ctx.signal,
      }).catch(() => undefined);
    }
  };

  /**
   * A POST with an Idempotency-Key: retried with the same key, so a request whose answer was lost
   * gets that answer. A `prelude_unavailable` answer is final for its key (the service answers it
   * again for the same key), so the client then tries again as a new request, with a new key.
   */
  const keyed = (name: StepName, path: string, body: unknown, key: { value: string; uses: number }) =>
    step(name, (previous) => {
      if (previous?.status === 503 && previous.body.code === 'prelude_unavailable') {
        key.value = randomUUID();
        key.uses = 0;
      }
      key.uses += 1;
      return {
        method: 'POST',
        url: `${ctx.serviceUrl}${path}`,
        body,
        headers: { ...auth, 'idempotency-key': key.value },
      };
    });
  const newKey = () => ({ value: randomUUID(), uses: 0 });
  const check = (name: StepName, code: string, key: { value: string; uses: number }) =>
    keyed(name, '/verifications/check', { target, code }, key);
  const readWindow = async () => {
    const read = await step('read_window', () => ({
      method: 'GET',
      url: `${ctx.serviceUrl}/verifications/${encodeURIComponent(result.windowId!)}`,
      headers: auth,
    }));
    if (read.status !== 200) throw new WrongAnswer(`GET /verifications/:id answered ${read.status}`);
    result.window = read.body as WindowAnswer;
  };
  /**
   * Whether a code was refused because the window's checks were all spent: answered like a closed
   * window (or `too_many_checks`) while the window reads `max_checks` with none left.
   */
  const checksUsedUp = async (answer: Answer) => {
    const refused =
      (answer.status === 200 && answer.body.status === 'expired_or_not_found') ||
      (answer.status === 429 && answer.body.code === 'too_many_checks');
    if (!refused) return false;
    // A flow whose send was refused has no window ID: the run's accounting reads the window by its
    // number's, and proves the checks spent or makes the flow a wrong outcome.
    if (result.windowId === undefined) return true;
    await readWindow();
    return result.window!.status === 'max_checks' && result.window!.checks_left === 0;
  };

  /** The newest code the sandbox sent to the number, once there is one. */
  const readCode = async (): Promise<string> => {
    for (;;) {
      const inbox = await step(
        'read_code',
        () => ({ method: 'GET', url: `${ctx.sandboxUrl}/sandbox/messages?to=${encodeURIComponent(phone)}` }),
        { viaService: false },
      );
      const messages = inbox.body.messages as { code?: string | null }[] | undefined;
      const code = messages?.[0]?.code;
      if (code) return code;
      result.steps.pop();
      await sleep(100, undefined, { signal: ctx.signal });
    }
  };

  try {
    // 1. Open a window. A service that ignores the key resends on a retried POST after a lost
    //    answer (`retry`, or 429 while the first send is still running).
    const sendKey = newKey();
    const sent = await keyed('send', '/verifications', { target }, sendKey);
    result.answers.send = sent.body;
    const sendStatus = String(sent.body.status ?? sent.body.code);
    // A send answered `prelude_unavailable` after an attempt that may have reached Prelude keeps
    // its window, with that send counted: the next POST (a new key) resends in it, as `retry`.
    const afterUnconfirmedSend = result.requests.some(
      (request) => request.step === 'send' && request.answer === 'prelude_unavailable',
    );
    if (sent.status === 200 && ['success', 'retry'].includes(sendStatus)) {
      result.windowId = String(sent.body.id);
      if (sendStatus === 'retry' && !afterUnconfirmedSend) {
        result.notes.push(
          sendKey.uses === 1
            ? 'its only POST /verifications answered retry'
            : `POST /verifications retried with the same Idempotency-Key answered retry`,
        );
      }
    } else if (sent.status === 429 && sendStatus === 'too_many_attempts' && afterUnconfirmedSend) {
      // The attempts of those sends filled Prelude's window (each that reached it sent a code, as
      // the run's resend delay is 0): the user has codes, and goes on to type one. The accounting
      // holds the window's count of them to the sandbox's.
      result.notes.push('POST /verifications answered too_many_attempts after sends with no answer');
    } else if (!(sent.status === 429 && sendStatus === 'premature_retry' && sendKey.uses > 1)) {
      throw new WrongAnswer(`POST /verifications answered ${sent.status} ${sendStatus}`);
    }

    // 2. The code, as the user reads it.
    let code = await readCode();

    // 2b. With `resend`: the user asks for the code again, in the open window (the run's cooldown
    //     and Prelude's resend delay are 0), and reads it again.
    if (ctx.resend) {
      let resent = await keyed('resend', '/verifications', { target }, newKey());
      // The window's own send under way (a fallback) refuses another meanwhile: the user is told
      // to wait (`premature_retry`, with the run's cooldown of 0 for no other reason) and asks again.
      while (isSendInProgress(resent)) {
        const waitMs = Number(resent.body.retry_after_seconds ?? 1) * 1_000;
        if (Date.now() + waitMs > deadline) throw new OutOfTime('resend: a send stayed in progress');
        result.notes.push('the resend met a send in progress, and was asked again');
        await sleep(waitMs, undefined, { signal: ctx.signal });
        resent = await keyed('resend', '/verifications', { target }, newKey());
      }
      result.answers.resend = resent.body;
      const resendStatus = String(resent.body.status ?? resent.body.code);
      if (resent.status === 429 && resendStatus === 'too_many_attempts') {
        // Sends cut by crashes and run again each sent a code (the resend delay is 0) can fill the
        // window: the user has codes. Only a window that counts every send used may say so; the
        // accounting holds its count to the sandbox's.
        if (result.windowId !== undefined) {
          await readWindow();
          const counted = sendsCounted(result.window!);
          if (counted < ctx.resend.maxSends) {
            throw new WrongAnswer(
              `a resend was refused too_many_attempts with ${counted} of ${ctx.resend.maxSends} sends counted`,
            );
          }
        }
        result.notes.push('the resend answered too_many_attempts: earlier sends filled the window');
      } else if (!(resent.status === 200 && resendStatus === 'retry')) {
        throw new WrongAnswer(`a resend in the open window answered ${resent.status} ${resendStatus}`);
      } else if (result.windowId !== undefined && String(resent.body.id) !== result.windowId) {
        throw new WrongAnswer(`a resend answered another window: ${String(resent.body.id)}`);
      } else {
        result.windowId ??= String(resent.body.id);
      }
      code = await readCode();
    }

    // 3. A wrong code, then the very same request again: the same answer, the check spent once.
    const wrongKey = newKey();
    const wrong = await check('wrong_check', ctx.wrongCode, wrongKey);
    result.answers.wrong_check = wrong.body;
    // Its lost answers, asked again, can spend every check: Prelude then refuses the next one.
    if (await checksUsedUp(wrong)) {
      throw new ChecksUsedUp(
        `the wrong code met the window's ${result.window?.checks_used ?? 'every'} checks used up`,
      );
    }
    if (wrong.status !== 200 || wrong.body.status !== 'failure') {
      throw new WrongAnswer(
        `a wrong code was answered ${wrong.status} ${wrong.body.status ?? wrong.body.code}`,
      );
    }
    result.windowId ??= String(wrong.body.id);
    const replay = await check('replay', ctx.wrongCode, wrongKey);
    result.answers.replay = replay.body;
    if (replay.status !== wrong.status || !isDeepStrictEqual(replay.body, wrong.body)) {
      throw new WrongAnswer(
        `the same Idempotency-Key was answered ${replay.status} ${JSON.stringify(replay.body)}, first ` +
          `${wrong.status} ${JSON.stringify(wrong.body)}`,
      );
    }

    // 4. The right code: from here the window has `stuckAfterMs` to read verified.
    result.rightCheckSentAt = Date.now();
    deadline = result.rightCheckSentAt + ctx.stuckAfterMs;
    const right = await check('right_check', code, newKey());
    result.answers.right_check = right.body;
    if (await checksUsedUp(right)) {
      throw new ChecksUsedUp(
        `the right code met the window's ${result.window?.checks_used ?? 'every'} checks used up`,
      );
    }
    if (right.status !== 200 || right.body.status !== 'success') {
      throw new WrongAnswer(
        `the right code was answered ${right.status} ${right.body.status ?? right.body.code}`,
      );
    }

    // 5. The window, until it reads verified.
    for (;;) {
      await readWindow();
      if (result.window!.status === 'verified') break;
      if (result.window!.status !== 'open') {
        throw new WrongAnswer(`the window closed ${result.window!.status} after the right code`);
      }
      await sleep(250, undefined, { signal: ctx.signal });
    }
    result.verdict = 'correct';
  } catch (error) {
    if (error instanceof ChecksUsedUp) {
      result.verdict = 'checks_used_up';
      result.reason = error.message;
    } else if (error instanceof WrongAnswer) {
      result.verdict = 'wrong_outcome';
      result.reason = error.message;
    } else {
      result.verdict = 'stuck';
      result.reason = error instanceof OutOfTime ? error.message : `aborted: ${(error as Error).message}`;
    }
  }
  result.finishedAt = Date.now();
  return result;
}

/** The sends a window counted itself: its attempts, less those only a delivery webhook told it of. */
export function sendsCounted(window: WindowAnswer): number {
  return window.attempts.filter((attempt) => attempt.trigger !== 'auto_retry').length;
}

/** A send refused because another send of the window is under way (see `validateSend`). */
function isSendInProgress(answer: Answer): boolean {
  return (
    answer.status === 429 &&
    answer.body.code === 'premature_retry' &&
    /already in progress/.test(String(answer.body.message))
  );
}

function parseBody(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : { value: parsed };
  } catch {
    return { text: text.slice(0, 200) };
  }
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
