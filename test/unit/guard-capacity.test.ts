/**
 * A country budget larger than its shards can count is said at start: each shard is full past
 * `countedSendsPerShard` sends of its period and refuses sends, so the operator is told how many
 * shards the budget needs. The defaults say nothing.
 */
import { loadConfig } from '../../temporal.config';
import { shardCapacityWarnings } from '../../src/guards/settings';
import { countedSendsPerShard } from '../../workflows/send-guard-messages';

const guardsOf = (env: Record<string, string>) => loadConfig({ ...env }).guards;

describe('the send guards’ shard capacity', () => {
  it('says nothing with the defaults, or with a budget the shards can count', () => {
    expect(shardCapacityWarnings(guardsOf({}))).toEqual([]);
    const fits = String(countedSendsPerShard * 4);
    expect(shardCapacityWarnings(guardsOf({ GUARD_COUNTRY_SENDS: fits }))).toEqual([]);
  });

  it('names a budget past what its shards count, and the shards it needs', () => {
    const [warning, ...others] = shardCapacityWarnings(guardsOf({ GUARD_COUNTRY_SENDS: '100000' }));
    expect(others).toEqual([]);
    expect(warning).toContain('GUARD_COUNTRY_SENDS=100000 over 4 shards is 25000 sends a period per shard');
    expect(warning).toContain(`set GUARD_SHARDS=${Math.ceil(100_000 / countedSendsPerShard)}`);
  });

  it('names a country budget past it, and one no number of shards can count', () => {
    const warnings = shardCapacityWarnings(
      guardsOf({
        GUARD_COUNTRY_BUDGETS: 'US:50000,FR:500',
        GUARD_COUNTRY_SENDS: '10000000',
        GUARD_SHARDS: '4',
      }),
    );
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('GUARD_COUNTRY_SENDS=10000000 over 4 shards');
    expect(warnings[0]).toContain('lower the budget or shorten its period');
    expect(warnings[1]).toContain('GUARD_COUNTRY_BUDGETS US=50000 over 4 shards');
    expect(warnings[1]).not.toContain('FR');
  });

  it('says nothing when the guards are off (that opt-out is said apart)', () => {
    expect(shardCapacityWarnings(guardsOf({ GUARD_MODE: 'off', GUARD_COUNTRY_SENDS: '100000' }))).toEqual([]);
  });
});
