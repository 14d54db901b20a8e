/**
 * The one way tests wait for something that happens asynchronously (a webhook, a Temporal timer, a
 * visibility listing, a child process's output): poll a condition, never sleep a fixed time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';

/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** What is awaited, in words: the timeout error starts with it. */
  description: string;
  /** How long to keep polling (default 10 s). */
  timeoutMs?: number;
  /** Pause between two polls (default 50 ms). */
  intervalMs?: number;
}

/**
 * Thrown by a condition to stop waiting at once (e.g. the process whose output is awaited exited):
 * {@link eventually} rethrows it instead of polling on.
 */
export class StopWaiting extends Error {
  override readonly name = 'StopWaiting';
}

/** What a condition that is not met yet returns. */
type NotYet = undefined | null | false;

/**
 * Calls `check` until it returns something other than `undefined`, `null` or `false`, and returns
 * that. A `check` that throws (an `expect` that does not hold yet, a call that fails for now) is
 * polled again, unless it threw {@link StopWaiting}. Once `timeoutMs` has passed, fails with an
 * error that says what was awaited and what the last poll returned or threw.
 */
export async function eventually<T>(
  check: () => T | NotYet | Promise<T | NotYet>,
  { description, timeoutMs = 10_000, intervalMs = 50 }: EventuallyOptions,
): Promise<T> {
  const started = Date.now();
  let polls = 0;
  let last: { value: unknown } | { error: unknown };
  for (;;) {
    polls += 1;
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
      last = { value };
    } catch (error) {
      if (error instanceof StopWaiting) {
        throw new Error(`stopped waiting for ${description}: ${error.message}`, { cause: error });
      }
      last = { error };
    }
    if (Date.now() - started >= timeoutMs) break;
    await sleep(intervalMs);
  }
  const seen =
    'error' in last
      ? `the last poll threw: ${describeError(last.error)}`
      : `the last poll returned: ${show(last.value)}`;
  throw new Error(`timed out after ${timeoutMs} ms (${polls} polls) waiting for ${description}; ${seen}`, {
    cause: 'error' in last ? last.error : undefined,
  });
}

function describeError(error: unknown): string {
  // Jest's assertion errors carry their diff in the message; keep it readable.
  if (error instanceof Error) return truncate(`${error.name}: ${error.message}`);
  return show(error);
}

function show(value: unknown): string {
  return truncate(inspect(value, { depth: 4, breakLength: 120 }));
}

function truncate(text: string, max = 2_000): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
