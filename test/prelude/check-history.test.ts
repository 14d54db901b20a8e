/**
 * How the `readCheckHistory` activity reads Prelude's record of a verification: the checks it
 * judged and whether one was right, and the sends its caller asked for, however the record words
 * them, and never a guess. A record it
 * cannot read, or that Prelude will not give, is `unavailable` (the window then counts by its own
 * rules); trouble that may pass is a failure Temporal retries.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createVerifyActivities } from '../../activities/verify';
import { PreludeError, type PreludeClient, type VerificationHistory } from '../../src/prelude';
import { activityEnvironmentNow } from '../support/activity-environment';

/** The activity over a client whose record read answers `answer` (or fails with it). */
function readWith(answer: Partial<VerificationHistory> | PreludeError) {
  const prelude = {
    verification: {
      history: async () => {
        if (answer instanceof PreludeError) throw answer;
        return { id: 'vrf_1', status: 'sent', lifecycle: { events: [] }, ...answer };
      },
    },
  } as unknown as PreludeClient;
  const { readCheckHistory } = createVerifyActivities({ prelude });
  return activityEnvironmentNow('history-test').run(readCheckHistory, { verificationId: 'vrf_1' });
}

const events = (...list: Record<string, unknown>[]) =>
  ({ events: [{ type: 'create' }, { type: 'attempt' }, ...list] }) as VerificationHistory['lifecycle'];

describe('readCheckHistory', () => {
  it('counts the checks Prelude judged and the right ones, from each check’s payload', async () => {
    expect(
      await readWith({
        lifecycle: events(
          { type: 'check', check: { is_valid: false } },
          { type: 'check', check: { is_valid: true } },
        ),
      }),
    ).toEqual({ kind: 'read', checks: 2, rightChecks: 1 });
  });

  it('reads a verdict written beside the event’s type too', async () => {
    expect(await readWith({ lifecycle: events({ type: 'check', is_valid: false }) })).toEqual({
      kind: 'read',
      checks: 1,
      rightChecks: 0,
    });
  });

  it('takes a converted verification as one right check, whatever its events say', async () => {
    expect(
      await readWith({
        status: 'converted',
        lifecycle: events({ type: 'check', check: { is_valid: false } }),
      }),
    ).toEqual({ kind: 'read', checks: 1, rightChecks: 1 });
  });

  it('is unavailable when a check’s verdict cannot be read, rather than a wrong code', async () => {
    expect(await readWith({ lifecycle: events({ type: 'check', check: {} }) })).toEqual({
      kind: 'unavailable',
    });
  });

  it('counts the sends its caller asked for, from each attempt’s payload or beside its type', async () => {
    const attempts = (...triggers: (string | undefined)[]) =>
      ({
        events: [
          { type: 'create' },
          ...triggers.map((trigger, i) =>
            i % 2 === 0 ? { type: 'attempt', attempt: { trigger } } : { type: 'attempt', trigger },
          ),
        ],
      }) as VerificationHistory['lifecycle'];
    // Prelude's own fallbacks (`auto_retry`) are not the caller's sends.
    expect(
      await readWith({ lifecycle: attempts('initial', 'auto_retry', 'user_retry', 'user_retry') }),
    ).toEqual({ kind: 'read', checks: 0, rightChecks: 0, sends: 3 });
    // An attempt whose trigger is missing or unknown leaves the sends unread; the checks still count.
    for (const unread of [attempts('initial', undefined), attempts('initial', 'carrier_retry')]) {
      expect(await readWith({ lifecycle: unread })).toEqual({ kind: 'read', checks: 0, rightChecks: 0 });
    }
  });

  it('is unavailable when Prelude will not give the record (404, 403)', async () => {
    for (const [status, kind] of [
      [404, 'invalid_request'],
      [403, 'auth'],
    ] as const) {
      const refused = new PreludeError({ kind, code: 'not_found', message: 'no', status });
      expect(await readWith(refused)).toEqual({ kind: 'unavailable' });
    }
  });

  it('fails, for Temporal to retry, when Prelude is in trouble that may pass', async () => {
    const outage = new PreludeError({ kind: 'server', code: 'internal_error', message: 'down', status: 500 });
    const failure = await readWith(outage).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ nonRetryable: false });
  });
});
