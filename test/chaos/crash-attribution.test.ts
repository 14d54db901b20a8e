/**
 * Which kills the chaos run holds responsible for a flow's miscounted sends: those during its own
 * send steps, and those during the sends its window made on its own (fallbacks), read from the
 * sandbox's call log. Pure: no stack.
 */
import type { CallRecord } from '../../src/sandbox/calls';
import { codesAfterVerified, cutByCrash, ownSendSpans } from './chaos';
import type { FlowResult, StepRecord } from './flow';

const t0 = Date.parse('2026-12-06T10:00:00.000Z');

function flowWith(steps: Pick<StepRecord, 'name' | 'start' | 'end'>[]): FlowResult {
  return {
    index: 1,
    phone: '+33612345678',
    verdict: 'correct',
    notes: [],
    startedAt: t0,
    finishedAt: t0 + 60_000,
    steps: steps.map((step) => ({ ...step, viaService: true, failedAt: [] })),
    requests: [],
    answers: {},
  };
}

function create(receivedMs: number, answeredMs = receivedMs + 20): CallRecord {
  return {
    id: `call_${receivedMs}`,
    operation: 'verification.create',
    target: { type: 'phone_number', value: '+33612345678' },
    receivedAt: new Date(t0 + receivedMs).toISOString(),
    at: new Date(t0 + answeredMs).toISOString(),
    status: 200,
    answer: { status: 'retry' },
    dropped: false,
  };
}

describe('the kills a chaos flow’s sends are held to', () => {
  // The user's send ran from 0 to 1 s; the window fell back on its own at 20 s.
  const flow = flowWith([
    { name: 'send', start: t0, end: t0 + 1_000 },
    { name: 'right_check', start: t0 + 5_000, end: t0 + 5_100 },
  ]);
  const calls = [create(500), create(20_000), { ...create(5_050), operation: 'verification.check' as const }];

  it('finds the fallback’s create, not the user’s send nor a check', () => {
    expect(ownSendSpans(flow, calls)).toEqual([{ start: t0 + 12_000, end: t0 + 21_020 }]);
  });

  it('holds a kill during a fallback, or in the time before it when a lost run of it could have run', () => {
    const fallbacks = ownSendSpans(flow, calls);
    expect(cutByCrash(flow, ['send'], [t0 + 15_000], fallbacks)).toBe(true);
    expect(cutByCrash(flow, ['send'], [t0 + 20_010], fallbacks)).toBe(true);
    // Without the window's own sends, only the user's send step counts.
    expect(cutByCrash(flow, ['send'], [t0 + 15_000])).toBe(false);
    expect(cutByCrash(flow, ['send'], [t0 + 500])).toBe(true);
  });

  it('does not hold a kill well before or after every send', () => {
    const fallbacks = ownSendSpans(flow, calls);
    expect(cutByCrash(flow, ['send'], [t0 + 5_000, t0 + 30_000], fallbacks)).toBe(false);
  });
});

describe('the codes a chaos run finds sent after a number was verified', () => {
  const check = (receivedMs: number, status: 'success' | 'failure'): CallRecord => ({
    ...create(receivedMs),
    operation: 'verification.check',
    answer: { status },
  });

  it('counts the creates Prelude received after it answered a check success, not those before', () => {
    // A frozen worker resumed at 30 s and sent the code it was asked for before it froze.
    const calls = [create(0), check(4_000, 'failure'), check(5_000, 'success'), create(30_000)];
    expect(codesAfterVerified(calls)).toBe(1);
    expect(codesAfterVerified(calls.slice(0, 3))).toBe(0);
  });

  it('counts none for a number never verified, nor a create Prelude refused', () => {
    expect(codesAfterVerified([create(0), check(4_000, 'failure'), create(9_000)])).toBe(0);
    expect(codesAfterVerified([create(0), check(5_000, 'success'), { ...create(30_000), status: 429 }])).toBe(
      0,
    );
  });
});
