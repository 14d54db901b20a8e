/**
 * Custom search attributes the workflows set, so the Temporal Web UI can filter verification windows.
 * They must be registered on the namespace (the dev server launcher does it with `--search-attribute`).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** `open` while the window runs, then its outcome (`verified`, `expired`, …). */
export const outcomeSearchAttribute = defineSearchAttributeKey('PreludeOutcome', SearchAttributeType.KEYWORD);

/** The normalised target, or its HMAC when an ID key is configured. */
export const targetKeySearchAttribute = defineSearchAttributeKey(
  'PreludeTargetKey',
  SearchAttributeType.KEYWORD,
);

/** Prelude's verification ID (`vrf_…`) once the window has one. */
export const verificationIdSearchAttribute = defineSearchAttributeKey(
  'PreludeVerificationId',
  SearchAttributeType.KEYWORD,
);

/** Every custom search attribute, for registration. */
export const customSearchAttributes = [
  outcomeSearchAttribute,
  targetKeySearchAttribute,
  verificationIdSearchAttribute,
] as const;
