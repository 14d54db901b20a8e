/**
 * The harnesses (`npm run chaos`, `npm run storm`) read their knobs like the configuration: with
 * none set they run on their defaults, and a bad value is named before anything starts.
 */
import { loadSection } from '../../temporal.config';
import { chaosEnv } from '../chaos/chaos';

describe('harness knobs', () => {
  it('runs the chaos on its defaults when nothing is set, the optional knobs left unset', () => {
    const knobs = loadSection(chaosEnv, {});
    expect(knobs).toMatchObject({ flows: 150, concurrency: 10, killDevServer: 1 });
    expect(knobs.maxWorkerKills).toBeUndefined();
    expect(knobs.deadlineMs).toBeUndefined();
    // An empty value (`CHAOS_DEADLINE_MS=` in a .env file) is unset too.
    expect(loadSection(chaosEnv, { CHAOS_DEADLINE_MS: '' }).deadlineMs).toBeUndefined();
    expect(loadSection(chaosEnv, { CHAOS_DEADLINE_MS: '90000', CHAOS_MAX_WORKER_KILLS: '3' })).toMatchObject({
      deadlineMs: 90_000,
      maxWorkerKills: 3,
    });
  });

  it('names a knob with a bad value', () => {
    expect(() => loadSection(chaosEnv, { CHAOS_DEADLINE_MS: 'soon' })).toThrow(/CHAOS_DEADLINE_MS/);
    expect(() => loadSection(chaosEnv, { CHAOS_MAX_WORKER_KILLS: '-1' })).toThrow(/CHAOS_MAX_WORKER_KILLS/);
  });
});
