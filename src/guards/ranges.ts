/**
 * Where a phone number sits: its country (for the allow-list and the budgets), its block (the range
 * of numbers that share its leading digits, for the velocity guard) and the shard of the country's
 * budget that counts it. All from the E.164 form the client helpers already made.
 */
import { createHash } from 'node:crypto';
import { parsePhoneNumberFromString } from 'libphonenumber-js';

/** A number's region (ISO 3166-1 alpha-2), or `ZZ` for a non-geographic or unparseable one (+800, +882, …). */
export function regionOf(e164: string): string {
  const country = parsePhoneNumberFromString(e164)?.country;
  return country && /^[A-Z]{2}$/.test(country) ? country : 'ZZ';
}

/** A number's block: the number without its last `trailingDigits` digits (10^trailingDigits numbers). */
export function blockOf(e164: string, trailingDigits: number): string {
  return e164.slice(0, Math.max(2, e164.length - trailingDigits));
}

/**
 * The shard a block is counted in: a block always lands in the same one, so its numbers are counted
 * in one place, while a country's many blocks spread over every shard.
 */
export function shardOf(block: string, shards: number): number {
  return createHash('sha256').update(block).digest().readUInt32BE(0) % shards;
}

/** A shard's share of `total`: the shares add up to `total` exactly. */
export function shareOf(total: number, shards: number, shard: number): number {
  return Math.floor(total / shards) + (shard < total % shards ? 1 : 0);
}

/** Whether a number is on the operator's list: an exact number, or a prefix ending in `*`. */
export function isExempt(e164: string, exempt: readonly string[]): boolean {
  return exempt.some((entry) => (entry.endsWith('*') ? e164.startsWith(entry.slice(0, -1)) : e164 === entry));
}
