/**
 * Where the send guards file a number (country, block, shard), how a country's budget is split, and
 * how their settings are read: what decides which entity counts a send, and how much it may grant.
 */
import { ConfigError, loadConfig } from '../../temporal.config';
import { blockOf, isExempt, regionOf, shardOf, shareOf } from '../../src/guards/ranges';
import { shardsOf } from '../../src/guards/settings';

describe('send guard ranges', () => {
  it('reads the country of a number, and ZZ when none can be told', () => {
    expect(regionOf('+447400123456')).toBe('GB');
    expect(regionOf('+33612345678')).toBe('FR');
    expect(regionOf('+80012345678')).toBe('ZZ');
    expect(regionOf('+447700900123')).toBe('ZZ');
  });

  it('files the numbers of one block together and in one shard', () => {
    expect(blockOf('+447400123456', 3)).toBe('+447400123');
    expect(blockOf('+447400123999', 3)).toBe(blockOf('+447400123000', 3));
    expect(shardOf(blockOf('+447400123456', 3), 4)).toBe(shardOf(blockOf('+447400123001', 3), 4));
    // A country's many blocks spread over every shard.
    const shards = new Set(Array.from({ length: 200 }, (_, i) => shardOf(`+447400${i}`, 4)));
    expect([...shards].sort()).toEqual([0, 1, 2, 3]);
  });

  it("splits a country's budget into shares that add up to it exactly", () => {
    for (const [total, shards] of [
      [1000, 4],
      [6, 4],
      [7, 3],
      [1, 1],
    ] as const) {
      const shares = Array.from({ length: shards }, (_, shard) => shareOf(total, shards, shard));
      expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    }
  });

  it('never spreads a budget over more shards than it has sends', () => {
    const guards = loadConfig({ GUARD_COUNTRY_BUDGETS: 'GB:2', GUARD_SHARDS: '8' }).guards;
    expect(shardsOf(guards, 'GB')).toBe(2);
    expect(shardsOf(guards, 'FR')).toBe(8);
  });

  it('exempts exact numbers and prefix ranges only', () => {
    const exempt = ['+447400999123', '+3361000*'];
    expect(isExempt('+447400999123', exempt)).toBe(true);
    expect(isExempt('+447400999124', exempt)).toBe(false);
    expect(isExempt('+33610001234', exempt)).toBe(true);
    expect(isExempt('+33610011234', exempt)).toBe(false);
  });
});

describe('send guard settings', () => {
  it('are on by default, every country allowed, blocks enforced', () => {
    const { guards } = loadConfig({});
    expect(guards).toMatchObject({
      mode: 'on',
      countries: '*',
      country: { sends: 1000, periodSeconds: 3600, burst: 100, burstSeconds: 60, perCountry: {} },
      ip: { sends: 20 },
      device: { sends: 10 },
      block: { numbers: 10, trailingDigits: 3, mode: 'enforce' },
    });
  });

  it('read country lists and budgets in any case', () => {
    const { guards } = loadConfig({ GUARD_COUNTRIES: 'gb, FR', GUARD_COUNTRY_BUDGETS: 'GB:5000,fr:200' });
    expect(guards.countries).toEqual(['GB', 'FR']);
    expect(guards.country.perCountry).toEqual({ GB: 5000, FR: 200 });
  });

  it('name the variable of a bad value', () => {
    for (const [variable, value] of [
      ['GUARD_COUNTRIES', 'GBR'],
      ['GUARD_COUNTRY_BUDGETS', 'GB=5000'],
      ['GUARD_EXEMPT_NUMBERS', '447400999123'],
      ['GUARD_BLOCK_MODE', 'on'],
    ]) {
      const error = (() => {
        try {
          loadConfig({ [variable!]: value });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.variable)).toEqual([variable]);
    }
  });
});
