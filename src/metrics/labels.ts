/**
 * Label values for the domain metrics. A label holds a small, known set of values: a channel, a
 * status, a country code. Never a phone number, an e-mail address, a code, a target key or an ID —
 * they would be personal data in the metrics store, and one series per person besides.
 */
import { regionOf } from '../guards/ranges';
import { channels as preludeChannels } from '../prelude/schemas';

/** What a target is for the metrics: its type, and for a phone number nothing but its value. */
export interface LabelledTarget {
  type: string;
  value: string;
}

/**
 * The ISO 3166 country of a phone number (`FR`), `none` for an e-mail address, `unknown` when no
 * country can be told (an unparseable or non-geographic number). The number itself goes no further.
 */
export function countryOf(target: LabelledTarget | undefined): string {
  if (!target) return 'unknown';
  if (target.type === 'email_address') return 'none';
  const region = regionOf(target.value);
  return region === 'ZZ' ? 'unknown' : region;
}

/** Prelude's channels; anything else is `other`, nothing is `unknown`. */
const channels: ReadonlySet<string> = new Set(preludeChannels);

/** A channel as a label value. */
export function channelLabel(channel: unknown): string {
  if (typeof channel !== 'string' || channel === '') return 'unknown';
  return channels.has(channel) ? channel : 'other';
}

/**
 * A value from a known vocabulary (statuses, outcomes, error kinds) as a label; anything outside it is
 * `other`, so a value Prelude adds later cannot open one series per distinct string.
 */
export function oneOf(vocabulary: ReadonlySet<string>, value: unknown): string {
  return typeof value === 'string' && vocabulary.has(value) ? value : 'other';
}

/** Prelude's delivery statuses. */
export const deliveryStatuses: ReadonlySet<string> = new Set([
  'submitted',
  'in_transit',
  'delivered',
  'undeliverable',
  'unknown',
]);

/** ISO 4217 currency codes look like this; anything else is `other`. */
export function currencyLabel(currency: unknown): string {
  return typeof currency === 'string' && /^[A-Z]{3}$/.test(currency) ? currency : 'other';
}
