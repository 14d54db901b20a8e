/**
 * Shapes of what backend code (and the HTTP service) hands the helpers. Validated here, at the
 * boundary, so a workflow never starts with input it cannot use.
 */
import { z } from 'zod';
import { verifyPolicySettings } from '../../temporal.config';
import { valueShape } from '../env';
import { createVerificationRequestSchema, targetSchema } from '../prelude/schemas';

/** A target as a caller gives it; normalised (E.164, lower-cased e-mail) before use. */
export const targetInputSchema = z.object({
  type: targetSchema.shape.type,
  value: z.string().trim().min(1).max(320),
});

/** Per-window overrides of the configured policy, within the limits of its settings. */
export const policyOverridesSchema = z.object(valueShape(verifyPolicySettings)).partial().strict();

/**
 * An `Idempotency-Key`: 1 to 255 letters, digits and `. _ : -`. It is bound to its request: the same
 * key with another request is refused (`idempotency_key_reused`).
 */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,255}$/, 'an Idempotency-Key is 1 to 255 letters, digits and . _ : -');

/** `startVerification`'s request: Prelude's create fields plus our window policy. */
export const startVerificationRequestSchema = z.object({
  target: targetInputSchema,
  signals: createVerificationRequestSchema.shape.signals,
  options: createVerificationRequestSchema.shape.options,
  dispatchId: z.string().length(36).optional(),
  policy: policyOverridesSchema.optional(),
  idempotencyKey: idempotencyKeySchema.optional(),
});

/** Input of {@link startVerification}. */
export type StartVerificationRequest = z.input<typeof startVerificationRequestSchema>;

/** `checkCode`'s request. */
export const checkCodeRequestSchema = z.object({
  target: targetInputSchema,
  code: z.string().trim(),
  /** The same key and request twice get the first answer again, spending one check. */
  idempotencyKey: idempotencyKeySchema.optional(),
});

/** Input of {@link checkCode}. */
export type CheckCodeRequestInput = z.input<typeof checkCodeRequestSchema>;
