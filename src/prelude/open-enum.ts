import { z } from 'zod';

/**
 * A string that is usually one of `values` but may be anything: Prelude adds statuses, channels and
 * reasons over time, and an answer from a newer API must pass through rather than crash. The type
 * keeps the known values for autocompletion.
 */
export function openEnum<const T extends readonly string[]>(
  _values: T,
): z.ZodType<T[number] | (string & {}), T[number] | (string & {})> {
  return z.string();
}
