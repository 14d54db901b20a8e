/**
 * The send guards' settings (`GUARD_*`, read in temporal.config.ts): what stops SMS pumping, where
 * each send goes to a fresh number, beyond the per-target limits that stop one number being flooded.
 */
import { countedSendsPerShard, type Allowance } from '../../workflows/send-guard-messages';

/** How the guards judge a phone send. */
export interface SendGuardSettings {
  /** `off` is the explicit, logged opt-out (`GUARD_MODE=off`). */
  mode: 'on' | 'off';
  /**
   * `lease` (the default): a process admits most sends under a lease of its shard's budget, with
   * no round trip (src/guards/leases.ts); `shard`: every send asks its shard.
   */
  admission: 'lease' | 'shard';
  /** Countries a code may be sent to (ISO 3166-1 alpha-2); `*`: all. */
  countries: '*' | readonly string[];
  /** Each country's SMS budget: sends per period, and a burst limit over a shorter one. */
  country: Allowance & { burst: number; burstSeconds: number; perCountry: Readonly<Record<string, number>> };
  /** Entities a country's budget is spread over, so that no one of them caps the send rate. */
  shards: number;
  ip: Allowance;
  device: Allowance;
  /** Distinct numbers of one block (numbers sharing all but their last `trailingDigits` digits) per period. */
  block: {
    numbers: number;
    trailingDigits: number;
    periodSeconds: number;
    mode: 'monitor' | 'enforce' | 'off';
  };
  /** Numbers no guard applies to: exact E.164 numbers, or prefixes ending in `*` (test numbers). */
  exempt: readonly string[];
}

/** A country's budget (sends per period), as configured. */
export function countryBudget(settings: SendGuardSettings, country: string): number {
  return settings.country.perCountry[country] ?? settings.country.sends;
}

/**
 * How many shards a country's budget is spread over: the configured number, but never more than
 * the budget or the burst (each shard must get at least one send of each).
 */
export function shardsOf(settings: SendGuardSettings, country: string): number {
  return shardsForBudget(settings, countryBudget(settings, country));
}

/** How many shards a budget of `sends` per period is spread over (see {@link shardsOf}). */
function shardsForBudget(settings: SendGuardSettings, sends: number): number {
  return Math.max(1, Math.min(settings.shards, sends, settings.country.burst));
}

/**
 * Budgets a country's shards cannot all count: past {@link countedSendsPerShard} sends of its period
 * a shard is full and refuses sends (its state must fit one continue-as-new payload). One line per
 * such budget, saying how many shards it needs; none with the defaults.
 */
export function shardCapacityWarnings(settings: SendGuardSettings): string[] {
  if (settings.mode === 'off') return [];
  const budgets = [
    { name: 'GUARD_COUNTRY_SENDS', sends: settings.country.sends },
    ...Object.entries(settings.country.perCountry).map(([country, sends]) => ({
      name: `GUARD_COUNTRY_BUDGETS ${country}`,
      sends,
    })),
  ];
  return budgets.flatMap(({ name, sends }) => {
    const shards = shardsForBudget(settings, sends);
    if (sends / shards <= countedSendsPerShard) return [];
    const needed = Math.ceil(sends / countedSendsPerShard);
    return [
      `${name}=${sends} over ${shards} shards is ${Math.ceil(sends / shards)} sends a period per shard; ` +
        `a shard counts about ${countedSendsPerShard} (with their IPs and devices) before it is full and ` +
        `refuses sends: ${needed <= 64 ? `set GUARD_SHARDS=${needed}` : 'lower the budget or shorten its period'}.`,
    ];
  });
}
