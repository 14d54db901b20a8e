import { createHmac } from 'node:crypto';
import type { Target } from '../prelude/schemas';
import { windowIdPrefix } from '../../workflows/verification-messages';

/**
 * The key a target's windows are filed under: an HMAC of the normalised target under the ID key, so
 * that phone numbers and e-mail addresses stay out of workflow IDs, search attributes, URLs and
 * answers (none of which the payload codec encrypts). Without the key it cannot be linked back to
 * the target. `idKey: null` is the explicit plaintext opt-out: the target itself is the key.
 */
export function targetKey(normalizedTarget: Target, idKey: string | null): string {
  if (idKey === null) return normalizedTarget.value;
  return createHmac('sha256', idKey)
    .update(`${normalizedTarget.type}:${normalizedTarget.value}`)
    .digest('hex')
    .slice(0, 32);
}

/** The workflow ID of a target's verification window. */
export function windowId(normalizedTarget: Target, idKey: string | null): string {
  return `${windowIdPrefix}${targetKey(normalizedTarget, idKey)}`;
}

/**
 * What a window ID looks like: the prefix and a target key, an HMAC (32 hex digits) or, in plaintext
 * mode, the target itself (an e-mail address is at most 320 characters).
 */
export function windowIdPattern(idKey: string | null): RegExp {
  return new RegExp(`^${windowIdPrefix}${idKey === null ? '[^/]{1,330}' : '[0-9a-f]{32}'}$`);
}
