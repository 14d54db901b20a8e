import { parsePhoneNumberWithError } from 'libphonenumber-js';
import { PreludeError } from './errors';
import { e164Pattern, emailPattern, type Target } from './schemas';

/**
 * The canonical form of a target, the one windows, caps and Prelude calls all use: a phone number in
 * E.164 (`+33 (0)6 12 34 56 78`, `+33612345678` and `0033612345678` are one number), an e-mail
 * address trimmed and lower-cased.
 *
 * @throws PreludeError `invalid_request` (code `invalid_phone_number` or `invalid_email_address`).
 */
export function normalizeTarget(target: Target): Target {
  if (target.type === 'phone_number') return { type: 'phone_number', value: e164(target.value) };
  const value = target.value.trim().toLowerCase();
  if (!emailPattern.test(value)) {
    throw new PreludeError({
      kind: 'invalid_request',
      code: 'invalid_email_address',
      message: 'the e-mail address is not valid',
    });
  }
  return { type: 'email_address', value };
}

const invalidPhoneNumber = () =>
  new PreludeError({
    kind: 'invalid_request',
    code: 'invalid_phone_number',
    message:
      'the phone number must be international, with its country code: +33612345678 or 0033612345678 (spaces, dashes, parentheses and a (0) trunk prefix are fine)',
  });

/**
 * A phone number in E.164. libphonenumber knows each country's trunk prefix ("+44 (0)20 …" dialled
 * from abroad leaves the 0 out) and number lengths; "00" is the international call prefix most of
 * the world dials instead of "+". A national number (no country code) is refused: guessing the country
 * would file one person under two keys.
 */
function e164(input: string): string {
  const international = input.trim().replace(/^00/, '+');
  if (!international.startsWith('+')) throw invalidPhoneNumber();
  let number: string;
  try {
    const parsed = parsePhoneNumberWithError(international);
    if (!parsed.isPossible()) throw invalidPhoneNumber();
    number = parsed.number;
  } catch (error) {
    if (error instanceof PreludeError) throw error;
    throw invalidPhoneNumber();
  }
  if (!e164Pattern.test(number)) throw invalidPhoneNumber();
  return number;
}
