/**
 * The webhook storm, short: a few hundred signed delivery events with duplicates, in any order, and
 * forgeries mixed in, through the real service, worker and dev server (`test/storm/storm.ts` runs the
 * full 10,000); no workflow runs per event.
 */
import { runStorm } from './storm';

describe('webhook storm', () => {
  it('applies every genuine event exactly once and every forged one to nothing', async () => {
    const report = await runStorm({ events: 400, windows: 8, concurrency: 32, timeoutMs: 30_000 });
    // The figures, for the record (and the seed, to replay a failing mix).
    console.log(JSON.stringify(report));
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ events: 400, forged: 20, duplicates: 120, genuine: 260, wrong: 0 });
    expect(report.applied_once).toBe(report.genuine);
    expect(report.http_status).toEqual({ '200': 380, '401': 20 });
    // Every 200 is a signal in its window's history; the window applied each event once.
    expect(report.signals).toBeGreaterThanOrEqual(380);
    expect(report.repeated_signals).toBe(report.signals - report.genuine);
    // Nothing runs per event: 8 windows, their 8 limits entities, and the send guard shards (at most
    // GUARD_SHARDS, 4, shared by every send to the country) their sends passed.
    expect(report.guard_shards).toBeLessThanOrEqual(4);
    expect(report.executions).toBe(16 + report.guard_shards);
  }, 90_000);
});
