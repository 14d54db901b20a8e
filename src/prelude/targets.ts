import { PreludeError } from './errors';
import { e164Pattern, type Target } from './schemas';

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * The canonical form of a target, the one windows are keyed by: a phone number without spaces,
 * dashes, dots or parentheses, and without a "(0)" trunk prefix (then E.164), an e-mail address
 * trimmed and lower-cased.
 *
 * @throws PreludeError `invalid_request` (code `invalid_phone_number` or `invalid_email_address`).
 */
export function normalizeTarget(target: Target): Target {
  if (target.type === 'phone_number') {
    // "(0)" is the national trunk prefix written into an international number (+44 (0)20 …):
    // dialled from abroad it is left out, so it must go, not just its parentheses.
    const value = target.value.replace(/\(0\)/g, '').replace(/[\s\-.()]/g, '');
    if (!e164Pattern.test(value)) {
      throw new PreludeError({
        kind: 'invalid_request',
        code: 'invalid_phone_number',
        message: 'the phone number must be in E.164 format, e.g. +33612345678',
      });
    }
    return { type: 'phone_number', value };
  }
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
