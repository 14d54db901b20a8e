/** Phone numbers for the suites that start their own sandbox (the Prelude client's and the sandbox's). */
import { randomInt } from 'node:crypto';

/** A phone number no other test uses. */
export function uniqueNumber(): string {
  return `+3367${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
}

/** A phone target no other test uses. */
export function phoneTarget(value = uniqueNumber()) {
  return { type: 'phone_number' as const, value };
}
