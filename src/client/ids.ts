import { createHmac } from 'node:crypto';
import type { Target } from '../prelude';
import { windowIdPrefix } from '../../workflows/verification-messages';

/**
 * The key a target's windows are filed under: the normalised target itself, or, when an ID key is
 * configured, an HMAC of it, so that phone numbers and e-mail addresses stay out of workflow IDs and
 * search attributes (which the payload codec does not encrypt).
 */
export function targetKey(normalizedTarget: Target, idKey?: string): string {
  if (!idKey) return normalizedTarget.value;
  return createHmac('sha256', idKey)
    .update(`${normalizedTarget.type}:${normalizedTarget.value}`)
    .digest('hex')
    .slice(0, 32);
}

/** The workflow ID of a target's verification window. */
export function windowId(normalizedTarget: Target, idKey?: string): string {
  return `${windowIdPrefix}${targetKey(normalizedTarget, idKey)}`;
}
